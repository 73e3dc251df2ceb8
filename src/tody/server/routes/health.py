"""Unauthenticated operational routes: /health, /metrics and Tinybird Local's /tokens."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tody.server.auth import blocking, json_response, platform_of
from tody.server.errors import error_response


async def health(request: Request) -> Response:
    platform = platform_of(request)
    await blocking(platform.engine.execute, "SELECT 1")
    return json_response({"status": "ok", "engine": platform.engine.name})


async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    platform = platform_of(request)
    m.pool_in_use.set(platform.engine.pool_in_use())
    m.pool_size.set(platform.engine.pool_size())
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


async def local_tokens(request: Request) -> Response:
    """Tinybird Local's token discovery, only when the server listens on loopback alone."""
    platform = platform_of(request)
    if not platform.config.is_loopback:
        return error_response(404, "Token discovery is off: the server does not listen on loopback only")
    workspace = platform.workspaces.ensure_default()
    token = await blocking(platform.workspaces.admin_token, workspace)
    return json_response({"workspace_admin_token": token, "admin_token": token})


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/tokens", local_tokens, methods=["GET"]),
]
