"""Request parameters as Tinybird takes them: from the query string or form fields, on every route."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from tody.services.errors import BadRequest, TooLarge

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Params(Mapping[str, str]):
    """Query string and form fields merged (form fields win); repeated keys keep every value."""

    def __init__(self, items: list[tuple[str, str]], files: dict[str, UploadFile] | None = None):
        self._lists: dict[str, list[str]] = {}
        for key, value in items:
            self._lists.setdefault(key, []).append(value)
        self.files = files or {}

    def __getitem__(self, key: str) -> str:
        return self._lists[key][-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def getlist(self, key: str) -> list[str]:
        return list(self._lists.get(key, []))

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None or value == "":
            return default
        return value.strip().lower() in {"1", "true", "yes", "on"}


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.startswith(FORM_TYPES)


async def read_params(request: Request, *, form: bool = True) -> Params:
    items = list(request.query_params.multi_items())
    files: dict[str, UploadFile] = {}
    if form and request.method in ("POST", "PUT", "PATCH", "DELETE") and is_form(request):
        try:
            form = await request.form()
        except Exception as exc:  # malformed multipart / urlencoded body
            raise BadRequest(f"Could not read the form body: {exc}") from None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = value
            else:
                items.append((key, value))
    return Params(items, files)


def token_from(request: Request, params: Params | None = None) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    token = request.query_params.get("token")
    if token is None and params is not None:
        token = params.get("token")
    return token


async def read_body(request: Request, limit: int | None = None, what: str = "max_body_bytes") -> bytes:
    """The whole body, read up to `limit` (default: the server's `max_body_bytes`, for bodies that are
    not data uploads: SQL, JSON, datafiles): past it, 413 before more is read."""
    limit = limit if limit is not None else request.app.state.platform.config.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The body is {declared} bytes; this route takes at most {limit} ({what})")
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The body is over {limit} bytes; this route takes at most {limit} ({what})")
        parts.append(chunk)
    body = b"".join(parts)
    request._body = body  # later reads of the body (Starlette caches it here) see the same bytes
    return body


async def json_body(request: Request) -> dict | None:
    """A JSON object body (None when the body is not JSON or empty); 400 when it does not parse."""
    if "application/json" not in request.headers.get("content-type", ""):
        return None
    raw = await read_body(request)
    if not raw.strip():
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("The JSON body must be an object")
    return body
