"""Materialized nodes of the Pipes API: link, unlink, populate, and the analysis the tb CLI asks for."""

from __future__ import annotations

from tody.server.auth import Call, api, blocking, json_response
from tody.server.routes.pipes import find_node, populate_options
from tody.services.tokens import PIPES_CREATE


def _job_body(call: Call, job) -> dict:
    described = call.platform.jobs.describe(job, call.host)
    return {"id": job.id, "job_id": job.id, "job_url": described["job_url"], "job": described}


@api("/v0/pipes/{name}/nodes/{node}/materialization", ["POST"], needs=PIPES_CREATE)
async def materialize(call: Call):
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    node = find_node(pipe, call.path("node"))
    target = call.params.get("datasource") or call.params.get("target_datasource") or ""
    existed = platform.catalog.datasource(call.principal.workspace.id, target) is not None
    populate = call.params.flag("populate")
    views = platform.materialized

    def link():
        if not populate:
            return views.materialize(call.principal, pipe, node, call.params)
        with views.deferring(pipe.name):
            return views.materialize(call.principal, pipe, node, call.params)

    pipe = await blocking(link)
    node = find_node(pipe, node.id)
    out = platform.pipes.describe_node(pipe, node)
    out["datasource"] = {"name": target}
    out["created_datasource"] = not existed
    if populate:
        job = await blocking(views.populate, call.principal, pipe, node, **populate_options(call))
        out.update(_job_body(call, job))
    return json_response(out)


@api("/v0/pipes/{name}/nodes/{node}/materialization", ["DELETE"], needs=PIPES_CREATE)
async def unlink(call: Call):
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    pipe = await blocking(
        platform.materialized.unlink, call.principal, pipe, find_node(pipe, call.path("node"))
    )
    return json_response(platform.pipes.describe(pipe, call.host))


@api("/v0/pipes/{name}/nodes/{node}/population", ["POST"], needs=PIPES_CREATE)
async def populate(call: Call):
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    node = find_node(pipe, call.path("node"))
    job = await blocking(platform.materialized.populate, call.principal, pipe, node, **populate_options(call))
    return json_response(_job_body(call, job))


@api("/v0/pipes/{name}/nodes/{node}/analysis", ["GET"], needs=PIPES_CREATE)
async def analysis(call: Call):
    """What materializing the node would write: the pipe's and the target's datafiles (tb push checks it)."""
    platform = call.platform
    pipe = platform.pipes.get(call.principal, call.path("name"))
    find_node(pipe, call.path("node"))
    out: dict = {"pipe": {"name": pipe.name, "datafile": platform.pipes.datafile(pipe)}}
    target = platform.catalog.datasource(call.principal.workspace.id, call.params.get("datasource", ""))
    if target is not None:
        out["datasource"] = {"name": target.name, "datafile": platform.datasources.datafile(target)}
    return json_response({"analysis": out, "warnings": []})


routes = [materialize, unlink, populate, analysis]
