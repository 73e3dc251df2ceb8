"""Sharing data sources with other workspaces (`POST|DELETE /v0/datasources/{name}/share`)."""

from __future__ import annotations

from tody.server.auth import Call, api, blocking, json_response
from tody.services.tokens import ADMIN


def _args(call: Call) -> tuple[str, str | None, str | None]:
    params = call.params
    destination = params.get("destination_workspace_id") or params.get("destination_workspace_name")
    return call.path("name"), params.get("origin_workspace_id"), destination


@api("/v0/datasources/{name}/share", ["POST"], needs=ADMIN, user_token=True)
async def share(call: Call):
    out = await blocking(call.platform.sharing.share, call.principal, *_args(call))
    return json_response(out)


@api("/v0/datasources/{name}/share", ["DELETE"], needs=ADMIN, user_token=True)
async def unshare(call: Call):
    force = call.params.flag("force")
    out = await blocking(call.platform.sharing.unshare, call.principal, *_args(call), force=force)
    return json_response(out)


routes = [share, unshare]
