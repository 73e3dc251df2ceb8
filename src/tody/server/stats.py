"""One row per endpoint or Query API request into `tinybird.pipe_stats_rt` (written off the request path)."""

from __future__ import annotations

import time

from tody.engine.base import Statistics
from tody.server.auth import Call


def path_and_query(call: Call) -> str:
    """What Tinybird records as `url`: the path and query string, without host or token (the tb
    CLI's push checker replays these against its own host)."""
    url = call.request.url.remove_query_params("token")
    return url.path + (f"?{url.query}" if url.query else "")


def record_request(
    call: Call,
    pipe_id: str,
    pipe_name: str,
    started: float,
    statistics: Statistics | None,
    *,
    status: int,
    request_id: str = "",
) -> None:
    token = call.principal.token
    call.platform.stats.pipe_request(
        workspace_id=call.principal.workspace.id,
        pipe_id=pipe_id,
        pipe_name=pipe_name,
        duration=time.perf_counter() - started,
        read_bytes=statistics.bytes_read if statistics else 0,
        read_rows=statistics.rows_read if statistics else 0,
        result_rows=statistics.result_rows if statistics else 0,
        url=path_and_query(call),
        error=0 if status < 400 else 1,
        request_id=request_id,
        token=token.id,
        token_name=token.name,
        status_code=status,
        method=call.request.method,
        parameters={k: v for k, v in call.request.query_params.items() if k != "token"},
        user_agent=call.request.headers.get("user-agent"),
        resource_tags=[],
        cpu_time=0.0,
    )
