"""Request → principal, and the one place where a route's declared scope is checked.

Routes are declared with `api(path, methods, scope=…)`; resource-level scopes (a given data source
or pipe) are checked by the services, which know the resource the request names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tody.server.params import Params, read_params, token_from
from tody.services.platform import Platform
from tody.services.tokens import Principal


@dataclass
class Call:
    """Everything a route handler needs about one request."""

    request: Request
    params: Params
    principal: Principal
    platform: Platform

    def path(self, name: str) -> str:
        return self.request.path_params[name]

    @property
    def host(self) -> str:
        """The server's own base URL as the client reached it (for job and endpoint URLs)."""
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[Call], Awaitable[Response]]


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


async def authenticate(request: Request, params: Params) -> Principal:
    platform = platform_of(request)
    return platform.tokens.authenticate(token_from(request, params))


def api(
    path: str, methods: list[str], *, scope: str | None = None, name: str | None = None, form: bool = True
):
    """Declare an authenticated API route. `scope` is the workspace-level scope it requires; with
    `form=False` the body is left for the handler (the Events API: `curl -d` sends NDJSON as a form)."""

    def wrap(handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            params = await read_params(request, form=form)
            try:
                principal = await authenticate(request, params)
                if scope is not None:
                    principal.require(scope)
                return await handler(Call(request, params, principal, platform_of(request)))
            finally:
                for upload in params.files.values():  # spooled uploads: free their temp files now
                    await upload.close()

        endpoint.__name__ = handler.__name__
        return Route(path, endpoint, methods=methods, name=name or handler.__name__)

    return wrap


def datafile_response(text: str) -> Response:
    # exactly `text/plain`, no charset: the tb CLI only treats that as text (`tb pull`)
    return Response(text, headers={"content-type": "text/plain"})


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def blocking(fn, *args, **kwargs):
    """Run engine or catalog work off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)
