"""Workspace info for the caller's token (what `tb auth` and `tb workspace` read)."""

from __future__ import annotations

from tody.server.auth import Call, api, json_response


@api("/v0/workspace", ["GET"])
async def current_workspace(call: Call):
    return json_response(call.platform.workspaces.describe(call.principal))


@api("/v0/user/workspaces/", ["GET"])
async def user_workspaces(call: Call):
    return json_response(call.platform.workspaces.user_workspaces(call.principal))


@api("/v0/user/workspaces", ["GET"], name="user_workspaces_no_slash")
async def user_workspaces_no_slash(call: Call):
    return json_response(call.platform.workspaces.user_workspaces(call.principal))


routes = [current_workspace, user_workspaces, user_workspaces_no_slash]
