"""Every error leaves the server as JSON `{"error": "…"}` with a status that says whose fault it was."""

from __future__ import annotations

import logging
import uuid

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tody.engine.base import EngineError
from tody.services.errors import ServiceError

log = logging.getLogger("tody.server")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: object
) -> Response:
    body = {"error": message, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def service_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status, exc.message, exc.headers, **exc.extra)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "Not found: no such API route. See the README for the available routes")
    if exc.status_code == 405:
        return error_response(405, "Method not allowed on this route")
    return error_response(exc.status_code, str(exc.detail))


async def engine_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    request_id = uuid.uuid4().hex
    log.error("engine error %s: %s (code %s)", request_id, exc.message, exc.code)
    return error_response(503, f"The engine could not run this request (request id {request_id}); try again")


async def unexpected_error(_request: Request, exc: Exception) -> Response:
    request_id = uuid.uuid4().hex
    log.exception("unexpected error %s", request_id, exc_info=exc)
    return error_response(500, f"Internal server error (request id {request_id})")
