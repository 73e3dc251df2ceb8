"""The Pipes API (`/v0/pipes`) and API Endpoints (`/v0/pipes/{name}.{format}`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
from starlette.responses import Response, StreamingResponse

from tody.datafiles.pipe import NodeFile
from tody.server.auth import ANY_TOKEN, Call, Needs, api, blocking, datafile_response, json_response
from tody.server.params import is_form, json_body, read_body
from tody.server.stats import record_request
from tody.services.errors import BadRequest, NotFound, ServiceError
from tody.services.tokens import PIPES_CREATE


async def _json_body(call: Call) -> dict | None:
    return await json_body(call.request)


async def _text_body(call: Call) -> str | None:
    if is_form(call.request) or "application/json" in call.request.headers.get("content-type", ""):
        return None
    raw = await read_body(call.request)
    return raw.decode(errors="replace") if raw.strip() else None


@api("/v0/pipes", ["GET"], needs=ANY_TOKEN)
async def list_pipes(call: Call):
    svc = call.platform.pipes
    return json_response({"pipes": [svc.describe(p, call.host) for p in svc.readable(call.principal)]})


@api("/v0/pipes", ["POST"], needs=PIPES_CREATE)
async def create_pipe(call: Call):
    svc = call.platform.pipes
    body = await _json_body(call)
    text = None if body is not None else await _text_body(call)
    name, spec = svc.from_request(call.params.get("name"), body, text, call.params)
    force = call.params.flag("force")
    views = call.platform.materialized
    targets = {n.datasource for n in spec.nodes if n.type == "materialized" and n.datasource}
    existed = {t for t in targets if call.platform.catalog.datasource(call.principal.workspace.id, t)}
    populate = call.params.flag("populate") and bool(targets)

    def create():
        if not populate:
            return svc.create(call.principal, spec, name or "", force=force)
        with views.deferring(name or ""):  # the populate job creates the view, so no row counts twice
            return svc.create(call.principal, spec, name or "", force=force)

    pipe = await blocking(create)
    out = svc.describe(pipe, call.host)
    if targets:
        target = next(iter(targets))
        out["datasource"] = {"name": target}
        out["created_datasource"] = target not in existed
    if populate:
        node = next(n for n in pipe.nodes if n.type == "materialized")
        job = await blocking(views.populate, call.principal, pipe, node, **populate_options(call))
        out["job"] = call.platform.jobs.describe(job, call.host)
    return json_response(out)


def populate_options(call: Call) -> dict:
    subset = call.params.get("populate_subset")
    try:
        fraction = float(subset) if subset else None
    except ValueError:
        raise BadRequest(f"populate_subset must be a number between 0 and 1, got '{subset}'") from None
    return {
        "condition": call.params.get("populate_condition") or None,
        "truncate": call.params.flag("truncate"),
        "subset": fraction,
    }


@api("/v0/pipes/openapi.json", ["GET"], needs=ANY_TOKEN)
async def openapi(call: Call):
    return json_response(await blocking(call.platform.openapi.document, call.principal, call.host))


@api("/v0/pipes/{name}.{extension}", ["GET", "POST"], needs=Needs("PIPES:READ:{name}"))
async def endpoint(call: Call):
    name, extension = call.path("name"), call.path("extension")
    platform = call.platform
    if extension == "pipe":
        pipe = platform.pipes.get(call.principal, name)
        return datafile_response(platform.pipes.datafile(pipe))
    pipe = platform.catalog.pipe(call.principal.workspace.id, name)
    if pipe is not None:
        call.count(platform.limits.endpoint(call.principal, pipe))
    values = _endpoint_params(call, await _json_body(call) if call.request.method == "POST" else None)
    started = time.perf_counter()
    try:
        result = await blocking(
            platform.endpoints.call, call.principal, name, extension, values, call.params.get("q")
        )
    except ServiceError as exc:
        _record(call, name, None, started, status=exc.status)
        raise
    output = result.output
    headers = {"X-Request-Id": result.request_id}
    if output.body is not None:
        _record(call, name, result, started, status=200)
        return Response(output.body, media_type=output.format.content_type, headers=headers)
    return StreamingResponse(
        _recorded_stream(call, name, result, started), media_type=output.format.content_type, headers=headers
    )


@api("/v1/pipes/{name}.pipe", ["GET"], needs=Needs("PIPES:READ:{name}"))
async def pipe_datafile(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    return datafile_response(svc.datafile(pipe))


@api("/v0/pipes/{name}", ["GET"], needs=Needs("PIPES:READ:{name}"))
async def get_pipe(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    if call.params.get("format") == "pipe":
        return datafile_response(svc.datafile(pipe))
    return json_response(svc.describe(pipe, call.host))


@api("/v0/pipes/{name}", ["PUT"], needs=PIPES_CREATE)
async def update_pipe(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    pipe = await blocking(
        svc.rename, call.principal, pipe, call.params.get("name"), call.params.get("description")
    )
    return json_response(svc.describe(pipe, call.host))


@api("/v0/pipes/{name}", ["DELETE"], needs=Needs("PIPES:DROP:{name}"))
async def delete_pipe(call: Call):
    svc = call.platform.pipes
    await blocking(svc.drop, call.principal, svc.get(call.principal, call.path("name")))
    return Response(status_code=204)


@api("/v0/pipes/{name}/nodes", ["POST"], needs=PIPES_CREATE)
async def add_node(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    fields = await _node_fields(call)
    if not fields.get("sql"):
        raise BadRequest("Missing 'sql': the SELECT of the new node")
    name = fields.get("name") or f"{pipe.name}_{len(pipe.nodes)}"
    node = NodeFile(name=name, sql=fields["sql"], description=fields.get("description"))
    pipe = await blocking(svc.add_node, call.principal, pipe, node)
    return json_response(svc.describe_node(pipe, pipe.node(name)))


@api("/v0/pipes/{name}/nodes/{node}", ["PUT"], needs=PIPES_CREATE)
async def update_node(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    node = find_node(pipe, call.path("node"))
    pipe = await blocking(svc.update_node, call.principal, pipe, node, await _node_fields(call))
    return json_response(svc.describe_node(pipe, pipe.node(node.id)))


@api("/v0/pipes/{name}/nodes/{node}", ["DELETE"], needs=PIPES_CREATE)
async def delete_node(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    await blocking(svc.delete_node, call.principal, pipe, find_node(pipe, call.path("node")))
    return Response(status_code=204)


@api("/v0/pipes/{name}/nodes/{node}/endpoint", ["POST", "DELETE"], needs=PIPES_CREATE)
async def publish(call: Call):
    svc = call.platform.pipes
    pipe = svc.get(call.principal, call.path("name"))
    node = find_node(pipe, call.path("node"))
    if call.request.method == "DELETE" and pipe.endpoint_node_id != node.id:
        raise BadRequest(f"Node '{node.name}' is not the published endpoint of pipe '{pipe.name}'")
    target = node if call.request.method == "POST" else None
    pipe = await blocking(svc.publish, call.principal, pipe, target)
    return json_response(svc.describe(pipe, call.host))


def find_node(pipe, name_or_id: str):
    node = pipe.node(name_or_id)
    if node is None:
        raise NotFound(f"Node '{name_or_id}' not found in pipe '{pipe.name}'")
    return node


async def _node_fields(call: Call) -> dict[str, str]:
    body = await _json_body(call)
    if body is not None:
        return {k: str(v) for k, v in body.items() if v is not None}
    fields = {k: call.params[k] for k in ("name", "sql", "description") if k in call.params}
    if "sql" not in fields:
        text = await _text_body(call)
        if text:
            fields["sql"] = text
    return fields


def _endpoint_params(call: Call, body: dict | None) -> dict[str, str | list[str]]:
    values: dict[str, str | list[str]] = {}
    for key in call.params:
        items = call.params.getlist(key)
        values[key] = items if len(items) > 1 else items[0]
    for key, value in (body or {}).items():
        if isinstance(value, list):
            values[key] = [_text(v) for v in value]
        elif value is not None:
            values[key] = _text(value)
    return values


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _record(call: Call, name: str, result, started: float, *, status: int) -> None:
    pipe = result.pipe if result else call.platform.catalog.pipe(call.principal.workspace.id, name)
    record_request(
        call,
        pipe.id if pipe else name,
        pipe.name if pipe else name,
        started,
        result.output.statistics if result else None,
        status=status,
        request_id=result.request_id if result else "",
    )


def _recorded_stream(call: Call, name: str, result, started: float) -> Iterator[bytes]:
    status = 200
    try:
        yield from result.output.stream
    except Exception:
        status = 500
        raise
    finally:
        _record(call, name, result, started, status=status)


routes = [
    list_pipes,
    create_pipe,
    openapi,
    endpoint,
    pipe_datafile,
    get_pipe,
    update_pipe,
    delete_pipe,
    add_node,
    update_node,
    delete_node,
    publish,
]
