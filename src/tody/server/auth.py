"""Request → principal, and the one place where a route's declared needs are checked.

Every route is declared with `api(path, methods, needs=…)`. `needs` is one of:
- `ANY_TOKEN`: any valid token of the workspace; the service narrows what it shows to the resources
  the token's scopes name (listings, the Query API, whose reads the SQL compiler checks per table);
- a scope, e.g. `PIPES_CREATE`;
- `Needs("DATASOURCES:APPEND:{name}", "DATASOURCES:CREATE")`: any one of scope templates whose
  `{param}` is the resource the request names (path or query parameter, as a name or an id);
- `ByParam("mode", default, {value: needs})` when a parameter chooses the operation.
Services check resource scopes again (they are called from other places too). Rate limits are
counted here as well, and the tightest one is reported in the X-RateLimit-* headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tody.catalog.store import Catalog
from tody.server.params import Params, read_params, token_from
from tody.services.errors import Forbidden, ServiceError
from tody.services.platform import Platform
from tody.services.ratelimit import RateDecision, tightest
from tody.services.tokens import Principal


@dataclass(frozen=True)
class Needs:
    """Any one of `alternatives` (scope templates); none at all means any valid token."""

    alternatives: tuple[str, ...] = ()

    def __init__(self, *alternatives: str):
        object.__setattr__(self, "alternatives", alternatives)

    def __str__(self) -> str:
        return " or ".join(self.alternatives) if self.alternatives else "any token of the workspace"

    def check(self, catalog: Catalog, principal: Principal, request: Request, params: Params) -> None:
        if not self.alternatives:
            return
        wanted = []
        for template in self.alternatives:
            scope_type, _, param = template.partition(":{")
            resource = None
            if param:
                raw = request.path_params.get(param[:-1]) or params.get(param[:-1]) or ""
                resource = _resource_name(catalog, principal, scope_type, raw)
            if principal.has(scope_type, resource):
                return
            wanted.append(f"{scope_type}:{resource}" if resource else scope_type)
        raise Forbidden(
            f"Not enough permissions: this token needs the {' or '.join(wanted)} scope (or ADMIN)"
        )


@dataclass(frozen=True)
class ByParam:
    """Needs chosen by a request parameter (e.g. `mode` of `POST /v0/datasources`)."""

    param: str
    default: str
    choices: Mapping[str, Needs] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{self.param}={value}: {needs}" for value, needs in self.choices.items())

    def check(self, catalog: Catalog, principal: Principal, request: Request, params: Params) -> None:
        choice = self.choices.get(params.get(self.param) or self.default)
        if choice is not None:  # an unknown value is the handler's 400
            choice.check(catalog, principal, request, params)


ANY_TOKEN = Needs()


def _resource_name(catalog: Catalog, principal: Principal, scope_type: str, raw: str) -> str:
    """The current name of the data source or pipe a request names by name or id."""
    if not raw:
        return raw
    workspace_id = principal.workspace.id
    if scope_type.startswith("PIPES:"):
        rec = catalog.pipe(workspace_id, raw)
    else:
        rec = catalog.datasource(workspace_id, raw)
    return rec.name if rec is not None else raw


@dataclass
class Call:
    """Everything a route handler needs about one request."""

    request: Request
    params: Params
    principal: Principal
    platform: Platform
    rate: list[RateDecision] = field(default_factory=list)

    def path(self, name: str) -> str:
        return self.request.path_params[name]

    @property
    def host(self) -> str:
        """The server's own base URL as the client reached it (for job and endpoint URLs)."""
        return str(self.request.base_url).rstrip("/")

    def count(self, decision: RateDecision | None) -> None:
        """Note a rate limit this request counted against (its headers go on the answer)."""
        if decision is not None:
            self.rate.append(decision)


Handler = Callable[[Call], Awaitable[Response]]


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


def api(
    path: str,
    methods: list[str],
    *,
    needs: Needs | ByParam | str,
    name: str | None = None,
    form: bool = True,
    user_token: bool = False,
):
    """Declare an authenticated API route and what its token needs (see the module docstring). With
    `form=False` the body is left for the handler (the Events API: `curl -d` sends NDJSON as a form).
    With `user_token=True` a user token is accepted too (`call.principal` is then a `UserPrincipal`,
    and the service checks the user's roles); `needs` applies to workspace tokens."""
    declared = Needs(needs) if isinstance(needs, str) else needs

    def wrap(handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            params = await read_params(request, form=form)
            call = None
            try:
                platform = platform_of(request)
                value = token_from(request, params)
                principal = (
                    platform.tokens.authenticate_any(value)
                    if user_token
                    else platform.tokens.authenticate(value)
                )
                call = Call(request, params, principal, platform)  # type: ignore[arg-type]
                if isinstance(principal, Principal):
                    declared.check(platform.catalog, principal, request, params)
                    call.count(platform.limits.token(principal))
                response = await handler(call)
                if call.rate:
                    response.headers.update(tightest(call.rate).headers())
                return response
            except ServiceError as exc:
                if call is not None and call.rate and not exc.headers:
                    exc.headers = tightest(call.rate).headers()
                raise
            finally:
                for upload in params.files.values():  # spooled uploads: free their temp files now
                    await upload.close()

        endpoint.__name__ = handler.__name__
        route = Route(path, endpoint, methods=methods, name=name or handler.__name__)
        route.needs = declared  # type: ignore[attr-defined]  # read by the README's route table test
        route.user_token = user_token  # type: ignore[attr-defined]
        return route

    return wrap


def datafile_response(text: str) -> Response:
    # exactly `text/plain`, no charset: the tb CLI only treats that as text (`tb pull`)
    return Response(text, headers={"content-type": "text/plain"})


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def blocking(fn, *args, **kwargs):
    """Run engine or catalog work off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)
