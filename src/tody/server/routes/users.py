"""Users and organizations: user tokens of organization admins manage them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tody.server.auth import Call, Needs, api, blocking, json_response, platform_of
from tody.server.params import json_body, read_params, token_from
from tody.services import consumption
from tody.services.errors import Forbidden
from tody.services.tokens import ADMIN_USER, UserPrincipal

USER_TOKEN_ONLY = Needs(ADMIN_USER)


def _user(call: Call) -> UserPrincipal:
    if not isinstance(call.principal, UserPrincipal):
        raise Forbidden("This needs a user token (an organization admin's), not a workspace token")
    return call.principal


async def create_user(request: Request) -> Response:
    """`POST /v0/users` {email, password}: by an organization admin, or by anyone with `allow_signup`."""
    platform = platform_of(request)
    params = await read_params(request)
    body = await json_body(request) or {}
    value = token_from(request, params)
    actor = platform.tokens.authenticate_any(value) if value else None
    if actor is not None and not isinstance(actor, UserPrincipal):
        raise Forbidden("Creating users needs an organization admin's user token, not a workspace token")
    email = str(body.get("email") or params.get("email") or "")
    password = str(body.get("password") or params.get("password") or "")
    user, token = await blocking(platform.users.create_by, actor, email, password)
    return json_response({**platform.users.describe(user), "token": token})


@api("/v0/users", ["GET"], needs=USER_TOKEN_ONLY, user_token=True)
async def list_users(call: Call):
    users = call.platform.users
    actor = _user(call)
    users.require_org_admin(actor)
    return json_response({"users": [users.describe(u) for u in users.managed(actor)]})


@api("/v0/users/{user}", ["DELETE"], needs=USER_TOKEN_ONLY, user_token=True)
async def delete_user(call: Call):
    await blocking(call.platform.users.delete_by, _user(call), call.path("user"))
    return Response(status_code=204)


@api("/v0/organizations/{organization}", ["GET"], needs=USER_TOKEN_ONLY, user_token=True)
async def get_organization(call: Call):
    return json_response(call.platform.organizations.describe(_user(call), call.path("organization")))


@api("/v0/organizations/{organization}/workspaces", ["GET"], needs=USER_TOKEN_ONLY, user_token=True)
async def organization_workspaces(call: Call):
    orgs = call.platform.organizations
    return json_response({"workspaces": orgs.workspaces(_user(call), call.path("organization"))})


@api("/v0/organizations/{organization}/consumption", ["GET"], needs=USER_TOKEN_ONLY, user_token=True)
async def organization_consumption(call: Call):
    """Storage now, and ingestion and requests per day over the last `days` (7; at most 90)."""
    org = call.platform.organizations.get(_user(call), call.path("organization"))
    days = consumption.parse_days(call.params.get("days"))
    platform = call.platform
    return json_response(await blocking(consumption.report, platform.catalog, platform.engine, org, days))


@api("/v0/organizations/{organization}/admins", ["PUT"], needs=USER_TOKEN_ONLY, user_token=True)
async def change_organization_admins(call: Call):
    emails = [e.strip() for v in call.params.getlist("users") for e in v.split(",") if e.strip()]
    orgs = call.platform.organizations
    admins = await blocking(
        orgs.change_admins, _user(call), call.path("organization"), call.params.get("operation", ""), emails
    )
    return json_response({"admins": admins})


create_user_route = Route("/v0/users", create_user, methods=["POST"])
create_user_route.needs = Needs(ADMIN_USER)  # type: ignore[attr-defined]
routes = [
    create_user_route,
    list_users,
    delete_user,
    get_organization,
    organization_workspaces,
    organization_consumption,
    change_organization_admins,
]
