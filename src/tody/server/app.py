"""The ASGI application: routes, error handlers and metrics around a `Platform`."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tody.engine.base import EngineError
from tody.metrics import Metrics
from tody.server import errors
from tody.server.routes import (
    copies,
    datasources,
    dependencies,
    events,
    health,
    jobs,
    materialized,
    pipes,
    sharing,
    sql,
    tokens,
    users,
    workspaces,
)
from tody.services.errors import ServiceError
from tody.services.platform import Platform

ROUTES = [
    *health.routes,
    *workspaces.routes,
    *datasources.routes,
    *pipes.routes,
    *jobs.routes,
    *sql.routes,
    *events.routes,
    *materialized.routes,
    *copies.routes,
    *tokens.routes,
    *users.routes,
    *sharing.routes,
    *dependencies.routes,
]


def needs_table() -> str:
    """The README's table of what each API route's token needs (a test keeps the two in step)."""
    lines = ["| route | the token needs |", "|---|---|"]
    for route in ROUTES:
        needs = getattr(route, "needs", None)
        if needs is None:
            continue
        methods = "\\|".join(m for m in sorted(route.methods or ()) if m != "HEAD")
        lines.append(f"| `{methods} {route.path}` | {needs} |")
    return "\n".join(lines)


class MetricsMiddleware:
    """Counts requests and latency per route template (never per raw path: bounded label sets)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            labels = (label, scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)


def create_app(platform: Platform) -> Starlette:
    metrics = Metrics()
    app = Starlette(
        routes=ROUTES,
        exception_handlers={
            ServiceError: errors.service_error,
            HTTPException: errors.http_error,
            EngineError: errors.engine_error,
            Exception: errors.unexpected_error,
        },
    )
    app.state.platform = platform
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


if __name__ == "__main__":
    print(needs_table())
