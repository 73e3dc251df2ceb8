"""Workspace info for the caller's token (what `tb auth` and `tb workspace` read)."""

from __future__ import annotations

from tody.server.auth import ANY_TOKEN, Call, api, blocking, json_response
from tody.services.tokens import ADMIN


@api("/v0/workspace", ["GET"], needs=ANY_TOKEN)
async def current_workspace(call: Call):
    return json_response(call.platform.workspaces.describe(call.principal))


@api("/v0/user/workspaces/", ["GET"], needs=ANY_TOKEN)
async def user_workspaces(call: Call):
    return json_response(call.platform.workspaces.user_workspaces(call.principal))


@api("/v0/user/workspaces", ["GET"], needs=ANY_TOKEN, name="user_workspaces_no_slash")
async def user_workspaces_no_slash(call: Call):
    return json_response(call.platform.workspaces.user_workspaces(call.principal))


@api("/v0/workspace/limits", ["GET"], needs=ADMIN)
async def workspace_limits(call: Call):
    platform = call.platform
    return json_response(platform.workspaces.limits(call.principal.workspace, platform.limits))


@api("/v0/workspace/limits", ["PUT", "POST"], needs=ADMIN)
async def set_workspace_limits(call: Call):
    platform = call.platform
    changes = {k: call.params[k] for k in call.params if k.startswith(("token_rps", "endpoint_rps"))}
    workspace = await blocking(platform.workspaces.set_limits, call.principal, changes)
    return json_response(platform.workspaces.limits(workspace, platform.limits))


routes = [
    current_workspace,
    user_workspaces,
    user_workspaces_no_slash,
    workspace_limits,
    set_workspace_limits,
]
