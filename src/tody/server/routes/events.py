"""The Events API (`POST /v0/events`): NDJSON or JSON events appended to a data source.

Answers 202 once the events are in the write-ahead log, or 200 with `wait=true` once they are in the
table; every answer carries the rate-limit headers of the data source (or of the token, when tighter).
"""

from __future__ import annotations

from tody.server.auth import Call, Needs, api, blocking, json_response
from tody.server.params import read_body
from tody.services.errors import Unavailable
from tody.services.ingest.batcher import BacklogFullError
from tody.services.ingest.events import decode_body
from tody.services.tokens import DATASOURCES_CREATE

WAIT_TIMEOUT = 30.0  # seconds a wait=true request waits for its flush before answering 202
INLINE_BYTES = 64 * 1024  # smaller bodies are decoded on the event loop (cheaper than a thread hop)


@api("/v0/events", ["POST"], needs=Needs("DATASOURCES:APPEND:{name}", DATASOURCES_CREATE), form=False)
async def append_events(call: Call):
    platform = call.platform
    config = platform.config
    name = call.params.get("name", "")
    call.count(
        platform.events_limiter.check(f"{call.principal.workspace.id}/{name}", f"Data Source '{name}'")
    )
    raw = await read_body(call.request, config.events_max_body_bytes, "events_max_body_bytes")
    fmt = (call.params.get("format") or "ndjson").lower()
    encoding = call.request.headers.get("content-encoding", "")
    decode_args = {"content_encoding": encoding, "fmt": fmt, "max_bytes": config.events_max_body_bytes * 10}
    if len(raw) <= INLINE_BYTES:
        payload = decode_body(raw, **decode_args)
    else:
        payload = await blocking(decode_body, raw, **decode_args)
    events = platform.events
    rec = events.existing(call.principal, name) or await blocking(
        events.create, call.principal, name, payload
    )
    if not payload.strip():
        return json_response({"successful_rows": 0, "quarantined_rows": 0})
    try:
        accepted = await events.accept(rec, payload)
    except BacklogFullError as exc:
        error = Unavailable(f"Too many events are waiting to be written; retry shortly ({exc})")
        error.headers = {"Retry-After": "1"}
        raise error from None
    if call.params.flag("wait"):
        outcome = await blocking(events.wait, accepted, WAIT_TIMEOUT)
        if outcome is not None:
            body = {"successful_rows": outcome.successful_rows, "quarantined_rows": outcome.quarantined_rows}
            if outcome.warning:
                body["warnings"] = [outcome.warning]
            return json_response(body)
    return json_response({"successful_rows": accepted.rows, "quarantined_rows": 0}, 202)


routes = [append_events]
