"""`GET /v0/dependencies`: the pipes that read each data source (the `tb dependencies` command)."""

from __future__ import annotations

from tody.server.auth import ANY_TOKEN, Call, api, json_response
from tody.services.dependencies import dependencies


@api("/v0/dependencies", ["GET"], needs=ANY_TOKEN)
async def list_dependencies(call: Call):
    p = call.params
    out = dependencies(
        call.platform.catalog,
        call.principal,
        datasource=p.get("datasource") or None,
        pipe=p.get("pipe") or None,
        match=p.get("match") or None,
        no_deps=p.flag("no_deps"),
        recursive=p.flag("recursive"),
    )
    return json_response(out)


routes = [list_dependencies]
