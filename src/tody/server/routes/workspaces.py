"""Workspaces: the caller's (what `tb auth` and `tb workspace` read), users' workspaces, members
and roles, and the workspace's request limits."""

from __future__ import annotations

from starlette.responses import Response

from tody.server.auth import ANY_TOKEN, Call, Needs, api, blocking, json_response
from tody.services.errors import Forbidden
from tody.services.tokens import ADMIN, ADMIN_USER, UserPrincipal


@api("/v0/workspace", ["GET"], needs=ANY_TOKEN)
async def current_workspace(call: Call):
    return json_response(call.platform.workspaces.describe(call.principal))


@api("/v0/user/workspaces/", ["GET"], needs=ANY_TOKEN, user_token=True)
async def user_workspaces(call: Call):
    return json_response(await blocking(call.platform.members.user_workspaces, call.principal))


@api("/v0/user/workspaces", ["GET"], needs=ANY_TOKEN, name="user_workspaces_no_slash", user_token=True)
async def user_workspaces_no_slash(call: Call):
    return json_response(await blocking(call.platform.members.user_workspaces, call.principal))


@api("/v0/workspaces", ["POST"], needs=Needs(ADMIN_USER), user_token=True)
async def create_workspace(call: Call):
    if not isinstance(call.principal, UserPrincipal):
        raise Forbidden("Creating a workspace needs a user token (GET /tokens on a local server shows it)")
    name = call.params.get("name") or call.params.get("workspace_name") or ""
    org = call.params.get("assign_to_organization_id") or call.params.get("organization_id")
    return json_response(await blocking(call.platform.lifecycle.create, call.principal, name, org))


@api("/v0/workspaces/{workspace}", ["GET"], needs=ANY_TOKEN, user_token=True)
async def get_workspace(call: Call):
    members = call.platform.members
    workspace = members.visible(call.principal, call.path("workspace"))
    role = members.role(call.principal, workspace) or "viewer"
    token = None
    if call.params.flag("with_token"):
        token = await blocking(members.token_for, call.principal, workspace)
    return json_response(members.describe(workspace, role, token))


@api("/v0/workspaces/{workspace}", ["DELETE"], needs=ADMIN, user_token=True)
async def delete_workspace(call: Call):
    force = call.params.flag("force") or call.params.get("hard_delete_confirmation") == "yes"
    await blocking(call.platform.lifecycle.delete, call.principal, call.path("workspace"), force=force)
    return Response(status_code=204)


@api("/v0/workspaces/{workspace}/users", ["GET"], needs=ANY_TOKEN, user_token=True)
async def workspace_members(call: Call):
    members = call.platform.members
    return json_response({"users": members.members(call.principal, call.path("workspace"))})


@api("/v0/workspaces/{workspace}/users/", ["PUT"], needs=ADMIN, user_token=True)
async def change_members(call: Call):
    emails = [e.strip() for v in call.params.getlist("users") for e in v.split(",") if e.strip()]
    role = call.params.get("new_role") or call.params.get("role")
    users = await blocking(
        call.platform.members.change,
        call.principal,
        call.path("workspace"),
        call.params.get("operation", ""),
        emails,
        role,
    )
    return json_response({"users": users})


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
    create_workspace,
    get_workspace,
    delete_workspace,
    workspace_members,
    change_members,
    workspace_limits,
    set_workspace_limits,
]
