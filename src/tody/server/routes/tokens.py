"""The Tokens API (`/v0/tokens`): static tokens and JWTs, as the tb CLI and the SDKs call it.

`POST /v0/tokens?name=…&scope=…&scope=…` makes a static token; with `expiration_time` (Unix seconds)
and a JSON body `{"name"?, "scopes": […], "limits"?: {"rps": n}}` it signs a JWT instead.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response

from tody.server.auth import Call, api, blocking, json_response
from tody.server.params import read_body
from tody.services.errors import BadRequest
from tody.services.tokens import TOKENS


async def _body(call: Call) -> bytes:
    return await read_body(call.request)


async def _scopes(call: Call) -> list[str] | None:
    """Scopes from repeated `scope` params; the tb CLI sends long lists as an untyped urlencoded body."""
    scopes = call.params.getlist("scope")
    if not scopes and call.request.method == "PUT" and "content-type" not in call.request.headers:
        body = (await _body(call)).decode(errors="replace")
        scopes = [v for k, v in parse_qsl(body, keep_blank_values=True) if k == "scope"]
    return scopes if scopes or "scope" in call.params else None


@api("/v0/tokens", ["GET"], needs=TOKENS)
async def list_tokens(call: Call):
    svc = call.platform.tokens
    return json_response(
        {"tokens": [svc.public(r, viewer=call.principal) for r in svc.visible(call.principal)]}
    )


@api("/v0/tokens", ["POST"], needs=TOKENS)
async def create_token(call: Call):
    svc = call.platform.tokens
    if call.params.get("expiration_time"):
        return await _create_jwt(call)
    name = call.params.get("name") or ""
    scopes = await _scopes(call) or []
    rec, _ = await blocking(
        svc.create_static,
        call.principal,
        name,
        scopes,
        description=call.params.get("description", ""),
        origin=call.params.get("origin", ""),
    )
    return json_response(svc.public(rec, viewer=call.principal))


async def _create_jwt(call: Call) -> Response:
    try:
        expiration = int(call.params["expiration_time"])
    except ValueError:
        raise BadRequest("expiration_time must be a Unix time in whole seconds") from None
    raw = await _body(call)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The JWT body must be JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadRequest('The JWT body must be a JSON object: {"scopes": [...], "limits": {"rps": n}}')
    scopes = body.get("scopes")
    if not isinstance(scopes, list):
        raise BadRequest("The JWT body needs 'scopes': a list of {type, resource, fixed_params?, filter?}")
    name = call.params.get("name") or body.get("name") or ""
    jwts = call.platform.tokens.jwt
    value = await blocking(jwts.create, call.principal, name, expiration, scopes, body.get("limits"))
    return json_response({"token": value})


@api("/v0/tokens/{token}", ["GET"], needs=TOKENS)
async def get_token(call: Call):
    svc = call.platform.tokens
    return json_response(svc.public(svc.get(call.principal, call.path("token")), viewer=call.principal))


@api("/v0/tokens/{token}", ["PUT"], needs=TOKENS)
async def update_token(call: Call):
    svc = call.platform.tokens
    rec = await blocking(
        svc.update,
        call.principal,
        call.path("token"),
        name=call.params.get("name"),
        description=call.params.get("description"),
        scopes=await _scopes(call),
    )
    return json_response(svc.public(rec, viewer=call.principal))


@api("/v0/tokens/{token}", ["DELETE"], needs=TOKENS)
async def delete_token(call: Call):
    await blocking(call.platform.tokens.delete, call.principal, call.path("token"))
    return Response(status_code=204)


@api("/v0/tokens/{token}/refresh", ["POST"], needs=TOKENS)
async def refresh_token(call: Call):
    svc = call.platform.tokens
    rec, _ = await blocking(svc.refresh, call.principal, call.path("token"))
    return json_response(svc.public(rec, viewer=call.principal))


routes = [list_tokens, create_token, get_token, update_token, delete_token, refresh_token]
