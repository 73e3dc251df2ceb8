"""Copy pipes in the Pipes API: link a node as the copy node, run it now, pause/resume its schedule."""

from __future__ import annotations

from tody.server.auth import Call, api, blocking, json_response
from tody.server.routes.pipes import find_node
from tody.services.tokens import PIPES_CREATE


def _job_body(call: Call, job, pipe) -> dict:
    described = call.platform.jobs.describe(job, call.host)
    return {
        "id": job.id,
        "job_id": job.id,
        "job_url": described["job_url"],
        "job": described,
        "status": job.status,
        "pipe_id": pipe.id,
        "pipe_name": pipe.name,
    }


@api("/v0/pipes/{name}/nodes/{node}/copy", ["POST", "PUT"], needs=PIPES_CREATE)
async def link(call: Call):
    """Make the node the copy node (`target_datasource`, `schedule_cron`, `mode`); PUT changes its
    settings (the tb CLI sends it after POST /v0/pipes, addressing the pipe and node by id)."""
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    node = find_node(pipe, call.path("node"))
    pipe = await blocking(platform.copies.link, call.principal, pipe, node, call.params)
    out = platform.pipes.describe_node(pipe, find_node(pipe, node.id))
    out["schedule"] = platform.copies.schedule_state(pipe, out.get("copy_schedule") or "@on-demand")
    return json_response(out)


@api("/v0/pipes/{name}/nodes/{node}/copy", ["DELETE"], needs=PIPES_CREATE)
async def unlink(call: Call):
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    pipe = await blocking(platform.copies.unlink, call.principal, pipe, find_node(pipe, call.path("node")))
    return json_response(platform.pipes.describe(pipe, call.host))


@api("/v0/pipes/{name}/copy", ["POST"], needs=PIPES_CREATE)
async def run(call: Call):
    """Run the copy now as a job: template parameters in the query string, `_mode` overrides the mode."""
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    values: dict[str, str | list[str]] = {}
    for key in call.params:
        items = call.params.getlist(key)
        values[key] = items if len(items) > 1 else items[0]
    job = await blocking(platform.copies.run, call.principal, pipe, values, call.params.get("_mode"))
    return json_response(_job_body(call, job, pipe))


@api("/v0/pipes/{name}/copy/pause", ["POST"], needs=PIPES_CREATE)
async def pause(call: Call):
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    pipe = await blocking(platform.copies.pause, call.principal, pipe)
    return json_response(platform.pipes.describe(pipe, call.host))


@api("/v0/pipes/{name}/copy/resume", ["POST"], needs=PIPES_CREATE)
async def resume(call: Call):
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    pipe = await blocking(platform.copies.resume, call.principal, pipe)
    return json_response(platform.pipes.describe(pipe, call.host))


@api("/v0/pipes/{name}/copy/cancel", ["POST"], needs=PIPES_CREATE)
async def cancel(call: Call):
    """Cancel the pipe's waiting or running copy job (a running append stops only before it writes)."""
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    job = await blocking(platform.copies.cancel, call.principal, pipe)
    return json_response(_job_body(call, job, pipe))


routes = [link, unlink, run, pause, resume, cancel]
