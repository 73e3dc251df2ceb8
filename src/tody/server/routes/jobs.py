"""The Jobs API (`/v0/jobs`)."""

from __future__ import annotations

from tody.server.auth import ANY_TOKEN, Call, Needs, api, blocking, json_response
from tody.services.tokens import DATASOURCES_CREATE, PIPES_CREATE


@api("/v0/jobs", ["GET"], needs=Needs(DATASOURCES_CREATE, PIPES_CREATE))
async def list_jobs(call: Call):
    svc = call.platform.jobs
    jobs = await blocking(
        svc.recent, call.principal, kind=call.params.get("kind"), status=call.params.get("status")
    )
    return json_response({"jobs": [svc.describe(j, call.host) for j in jobs]})


@api("/v0/jobs/{job_id}", ["GET"], needs=ANY_TOKEN)
async def get_job(call: Call):
    svc = call.platform.jobs
    return json_response(
        svc.describe(await blocking(svc.get, call.principal, call.path("job_id")), call.host)
    )


@api("/v0/jobs/{job_id}/cancel", ["POST"], needs=Needs(DATASOURCES_CREATE, PIPES_CREATE))
async def cancel_job(call: Call):
    svc = call.platform.jobs
    return json_response(
        svc.describe(await blocking(svc.cancel, call.principal, call.path("job_id")), call.host)
    )


routes = [list_jobs, get_job, cancel_job]
