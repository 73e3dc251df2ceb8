"""The Query API: `GET|POST /v0/sql` and `POST /v0/sql_tables`."""

from __future__ import annotations

import time

from starlette.responses import Response, StreamingResponse

from tody.server.auth import ANY_TOKEN, Call, api, blocking, json_response
from tody.server.params import is_form, read_body
from tody.server.stats import record_request
from tody.services.compiler import ORGANIZATION_QUALIFIER, SERVICE_QUALIFIER
from tody.services.errors import BadRequest, ServiceError


async def _sql_text(call: Call) -> str:
    q = call.params.get("q")
    if q is None and call.request.method == "POST" and not is_form(call.request):
        body = await read_body(call.request)
        try:
            q = body.decode()
        except UnicodeDecodeError:
            raise BadRequest("The request body is not UTF-8 text; send the SQL as text or as 'q'") from None
    if not q or not q.strip():
        raise BadRequest("Missing query: pass the SQL as 'q' (query string or form) or as the POST body")
    return q


# Reads are checked per table by the query service's resolver (DATASOURCES:READ:<name>).
@api("/v0/sql", ["GET", "POST"], needs=ANY_TOKEN)
async def sql(call: Call):
    q = await _sql_text(call)
    metrics = call.request.app.state.metrics
    started = time.perf_counter()
    try:
        output = await blocking(call.platform.query.run, call.principal, q, call.params.get("pipeline"))
    except ServiceError as exc:
        metrics.queries.labels("error").inc()
        record_request(call, "query_api", "query_api", started, None, status=exc.status)
        raise
    metrics.queries.labels("ok").inc()
    # Queries over service data sources alone (tinybird.*, organization.*) are not recorded (as Tinybird).
    service = (SERVICE_QUALIFIER, ORGANIZATION_QUALIFIER)
    if not (output.tables and all(db in service for db, _ in output.tables)):
        record_request(call, "query_api", "query_api", started, output.statistics, status=200)
    if output.body is not None:
        return Response(output.body, media_type=output.format.content_type)
    return StreamingResponse(output.stream, media_type=output.format.content_type)


@api("/v0/sql_tables", ["GET", "POST"], needs=ANY_TOKEN)
async def sql_tables(call: Call):
    q = await _sql_text(call)
    tables = call.platform.query.tables(q, table_functions=call.params.flag("table_functions", True))
    return json_response({"tables": tables})


routes = [sql, sql_tables]
