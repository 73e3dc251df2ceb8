"""Tokens used beyond their scopes: row-filter bypasses (token `filtered` reads `events` only where
`id < 3`) and scope escalation (each token of conftest.A_TOKENS trying what its scopes do not allow).

Not here, on purpose: the /v0/tokens API, JWTs, rate limits, and reusing a refreshed or deleted
token. Those are tested with the Tokens API itself (tests/server/test_tokens_api.py and the JWT and
rate-limit tests).
"""

from __future__ import annotations

from cases_sql import sql
from hostile import Case, Inert

FILTERED = "filtered"


def fsql(id: str, q: str, error: str, status: int | tuple[int, ...] = 400) -> Case:
    return sql(id, q, error, status, token=FILTERED)


ROW_FILTER_REFUSED = [
    fsql("quarantine", "SELECT * FROM events_quarantine", "DATASOURCES:READ:events_quarantine", 403),
    fsql(
        "quarantine_in_join", "SELECT * FROM events JOIN events_quarantine USING id", "events_quarantine", 403
    ),
    fsql(
        "quarantine_in_subquery",
        "SELECT count() FROM (SELECT * FROM events_quarantine)",
        "events_quarantine",
        403,
    ),
    fsql("physical_table", "SELECT * FROM %A_DB%.%A_EVENTS%", "Resource '%A_DB%.%A_EVENTS%' not found"),
    fsql("qualified_name", "SELECT * FROM %A_DB%.events", "Resource '%A_DB%.events' not found"),
    fsql("merge", "SELECT * FROM merge('%A_DB%', '.*')", "'merge' is not allowed"),
    fsql("loop", "SELECT * FROM loop(events) LIMIT 5", "'loop' is not allowed"),
    fsql("view", "SELECT * FROM view(SELECT * FROM events)", "not allowed"),
    fsql("final", "SELECT * FROM events FINAL", "FINAL"),
    fsql("sample", "SELECT * FROM events SAMPLE 1", "sampling"),
    fsql(
        "settings_filters",
        "SELECT * FROM events SETTINGS additional_table_filters = {'events': '1'}",
        "SETTINGS",
    ),
    fsql("other_datasource", "SELECT * FROM a_private", "DATASOURCES:READ:a_private", 403),
    fsql("pipe_without_scope", "SELECT * FROM ep", "PIPES:READ:ep", 403),
    Case("endpoint_without_scope", "GET", "/v0/pipes/ep.json", 403, "PIPES:READ:ep", token=FILTERED),
    Case(
        "q_without_pipe_scope",
        "GET",
        "/v0/pipes/ep.json",
        403,
        "PIPES:READ:ep",
        token=FILTERED,
        params={"q": "SELECT * FROM events"},
    ),
    Case(
        "pipeline_nodes",
        "GET",
        "/v0/sql",
        403,
        "PIPES:READ:ep",
        token=FILTERED,
        params={"q": "SELECT * FROM ep_node", "pipeline": "ep"},
    ),
    Case("export_datafile", "GET", "/v0/pipes/ep.pipe", 403, "PIPES:READ:ep", token=FILTERED),
    fsql(
        "service_stats",
        "SELECT parameters FROM tinybird.pipe_stats_rt",
        "DATASOURCES:READ:tinybird.pipe_stats_rt",
        403,
    ),
    fsql(
        "service_ops_log",
        "SELECT datasource_name FROM tinybird.datasources_ops_log",
        "tinybird.datasources_ops_log",
        403,
    ),
    fsql(
        "service_jobs_log",
        "WITH j AS (SELECT * FROM tinybird.jobs_log) SELECT count() FROM j",
        "tinybird.jobs_log",
        403,
    ),
    Case(
        "q_service_stats",
        "GET",
        "/v0/pipes/ep.json",
        403,
        "tinybird.pipe_stats_rt",
        token="filtered_pipe",
        params={"q": "SELECT * FROM _ WHERE toString(id) IN (SELECT url FROM tinybird.pipe_stats_rt)"},
    ),
    Case(
        "delete_outside_filter",
        "POST",
        "/v0/datasources/events/delete",
        403,
        "DATASOURCES:DROP:events",
        token=FILTERED,
        data={"delete_condition": "id >= 3"},
    ),
]


def holds(id: str, q: str, expect: list, token: str = FILTERED) -> Inert:
    return Inert(id, "GET", "/v0/sql", expect, token=token, params={"q": q})


def holds_endpoint(id: str, values: dict, expect: list) -> Inert:
    return Inert(id, "GET", "/v0/pipes/ep.json", expect, token="filtered_pipe", params=values, pick="id")


C3 = [{"c": 3}]

ROW_FILTER_HOLDS = [
    holds("plain", "SELECT id FROM events ORDER BY id", [{"id": 0}, {"id": 1}, {"id": 2}]),
    holds("where_outside", "SELECT count() AS c FROM events WHERE id >= 3", [{"c": 0}]),
    holds("or_true", "SELECT count() AS c FROM events WHERE 1 OR id >= 3", C3),
    holds("prewhere", "SELECT count() AS c FROM events PREWHERE id >= 3", [{"c": 0}]),
    holds("max", "SELECT max(id) AS m FROM events", [{"m": 2}]),
    holds("subquery", "SELECT count() AS c FROM (SELECT * FROM events)", C3),
    holds("scalar_subquery", "SELECT (SELECT count() FROM events) AS c", C3),
    holds("self_join", "SELECT count() AS c FROM events AS a JOIN events AS b USING id", C3),
    holds(
        "join_numbers", "SELECT count() AS c FROM numbers(10) AS n JOIN events AS e ON e.id = n.number", C3
    ),
    holds(
        "union",
        "SELECT count() AS c FROM (SELECT id FROM events UNION ALL SELECT id FROM events)",
        [{"c": 6}],
    ),
    holds("in_subquery", "SELECT count() AS c FROM numbers(10) WHERE number IN (SELECT id FROM events)", C3),
    holds(
        "not_in_subquery",
        "SELECT count() AS c FROM numbers(10) WHERE number NOT IN (SELECT id FROM events)",
        [{"c": 7}],
    ),
    holds(
        "cte_named_like_table", "WITH events AS (SELECT * FROM events) SELECT count() AS c FROM events", C3
    ),
    holds(
        "cte_chain",
        "WITH a AS (SELECT * FROM events), events AS (SELECT * FROM a) SELECT count() AS c FROM events",
        C3,
    ),
    holds("alias_of_quarantine", "SELECT count() AS c FROM events AS events_quarantine", C3),
    holds("alias_of_other", "SELECT count() AS c FROM events AS a_private", C3),
    holds("array_join", "SELECT count() AS c FROM events ARRAY JOIN [1, 2] AS x", [{"c": 6}]),
    holds("window", "SELECT count() OVER () AS c FROM events LIMIT 1", C3),
    holds(
        "with_totals",
        "SELECT event, count() AS c FROM events GROUP BY event WITH TOTALS ORDER BY event",
        [{"event": "buy", "c": 1}, {"event": "click", "c": 1}, {"event": "view", "c": 1}],
    ),
    holds("in_list", "SELECT count() AS c FROM events WHERE id IN (0, 5, 9)", [{"c": 1}]),
    holds_endpoint("endpoint", {}, [0, 1, 2]),
    holds_endpoint("endpoint_params", {"u64": "100", "limit": "100"}, [0, 1, 2]),
    holds_endpoint("endpoint_outside", {"i": "5"}, []),
    Inert(
        "q_over_endpoint",
        "GET",
        "/v0/pipes/ep.json",
        C3,
        token="filtered_pipe",
        params={"q": "SELECT count() AS c FROM _"},
    ),
    Inert(
        "q_reads_table",
        "GET",
        "/v0/pipes/ep.json",
        C3,
        token="filtered_pipe",
        params={"q": "SELECT count() AS c FROM events"},
    ),
    holds("sql_over_endpoint", "SELECT count() AS c FROM ep", C3, token="filtered_pipe"),
]


def esc(id: str, token: str, method: str, path: str, error: str, status: int = 403, **kw) -> Case:
    return Case(id, method, path, status, error, token=token, **kw)


EVENT = b'{"id": 99, "event": "x", "value": 1}'
NEW_PIPE = {"name": "hostile_pipe", "nodes": [{"name": "hostile_node", "sql": "SELECT 1"}]}
NEW_DS = {"name": "hostile_ds", "schema": "a UInt8"}

SCOPE_ESCALATION = [
    # an append-only token reading
    esc(
        "append_reads_sql",
        "append",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM events"},
    ),
    esc(
        "append_reads_rows_by_q",
        "append",
        "GET",
        "/v0/pipes/ep.json",
        "PIPES:READ:ep",
        params={"q": "SELECT * FROM events"},
    ),
    esc("append_reads_endpoint", "append", "GET", "/v0/pipes/ep.json", "PIPES:READ:ep"),
    esc("append_reads_pipe", "append", "GET", "/v0/pipes/ep", "PIPES:READ:ep"),
    esc("append_reads_pipe_datafile", "append", "GET", "/v1/pipes/ep.pipe", "PIPES:READ:ep"),
    esc(
        "append_appends_elsewhere",
        "append",
        "POST",
        "/v0/events",
        "DATASOURCES:APPEND:a_private",
        params={"name": "a_private"},
        content=EVENT,
    ),
    esc(
        "append_creates_by_events",
        "append",
        "POST",
        "/v0/events",
        "hostile_ds",
        status=(403, 404),
        params={"name": "hostile_ds"},
        content=EVENT,
    ),
    esc(
        "append_replaces",
        "append",
        "POST",
        "/v0/datasources",
        "DATASOURCES",
        params={"name": "events", "mode": "replace"},
        content=b"99,x,1\n",
    ),
    esc(
        "append_reads_stats",
        "append",
        "GET",
        "/v0/sql",
        "tinybird.pipe_stats_rt",
        params={"q": "SELECT url FROM tinybird.pipe_stats_rt"},
    ),
    esc("append_truncates", "append", "POST", "/v0/datasources/events/truncate", "DATASOURCES:DROP:events"),
    esc(
        "append_deletes_rows",
        "append",
        "POST",
        "/v0/datasources/events/delete",
        "DATASOURCES:DROP:events",
        data={"delete_condition": "1"},
    ),
    # a read token writing
    esc(
        "read_appends_events",
        "read",
        "POST",
        "/v0/events",
        "DATASOURCES:APPEND:events",
        params={"name": "events"},
        content=EVENT,
    ),
    esc(
        "read_appends_file",
        "read",
        "POST",
        "/v0/datasources",
        "DATASOURCES:APPEND:events",
        params={"name": "events", "mode": "append"},
        content=b"99,x,1\n",
    ),
    esc(
        "read_appends_multipart",
        "read",
        "POST",
        "/v0/datasources",
        "DATASOURCES:APPEND:events",
        params={"name": "events", "mode": "append"},
        files={"csv": ("../../%PWN%", b"99,x,1\n")},
    ),
    esc("read_creates_datasource", "read", "POST", "/v0/datasources", "DATASOURCES:CREATE", data=NEW_DS),
    esc("read_drops_datasource", "read", "DELETE", "/v0/datasources/events", "DATASOURCES:DROP:events"),
    esc("read_truncates", "read", "POST", "/v0/datasources/events/truncate", "DATASOURCES:DROP:events"),
    esc(
        "read_deletes_rows",
        "read",
        "POST",
        "/v0/datasources/events/delete",
        "DATASOURCES:DROP:events",
        data={"delete_condition": "id > 0"},
    ),
    esc(
        "read_renames",
        "read",
        "PUT",
        "/v0/datasources/events",
        "DATASOURCES:CREATE",
        data={"name": "renamed"},
    ),
    esc("read_creates_pipe", "read", "POST", "/v0/pipes", "PIPES:CREATE", json=NEW_PIPE),
    esc(
        "read_writes_through_sql",
        "read",
        "GET",
        "/v0/sql",
        "Only read-only",
        status=400,
        params={"q": "INSERT INTO events VALUES (99, 'x', 1)"},
    ),
    esc(
        "read_reads_other_datasource",
        "read",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:a_private",
        params={"q": "SELECT * FROM a_private"},
    ),
    esc("read_reads_endpoint", "read", "GET", "/v0/pipes/ep.json", "PIPES:READ:ep"),
    esc("read_runs_copy", "read", "POST", "/v0/pipes/cp/copy", "PIPES:CREATE"),
    # a pipe token
    esc(
        "pipe_token_sql_on_table",
        "pipe_read",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM events"},
    ),
    esc("pipe_token_other_pipe", "pipe_read", "GET", "/v0/pipes/other.json", "PIPES:READ:other"),
    esc(
        "pipe_token_sql_other_pipe",
        "pipe_read",
        "GET",
        "/v0/sql",
        "PIPES:READ:other",
        params={"q": "SELECT * FROM other"},
    ),
    esc(
        "pipe_token_q_on_table",
        "pipe_read",
        "GET",
        "/v0/pipes/ep.json",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM events"},
    ),
    esc(
        "pipe_token_q_other_pipe",
        "pipe_read",
        "GET",
        "/v0/pipes/ep.json",
        "PIPES:READ:other",
        params={"q": "SELECT * FROM _, other"},
    ),
    esc(
        "pipe_token_q_private",
        "pipe_read",
        "GET",
        "/v0/pipes/ep.json",
        "DATASOURCES:READ:a_private",
        params={"q": "SELECT * FROM a_private"},
    ),
    esc(
        "pipe_token_pipeline_nodes",
        "pipe_read",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM ep_node", "pipeline": "ep"},
    ),
    esc(
        "pipe_token_reads_ops_log",
        "pipe_read",
        "GET",
        "/v0/sql",
        "tinybird.datasources_ops_log",
        params={"q": "SELECT * FROM tinybird.datasources_ops_log"},
    ),
    esc("pipe_token_drops_pipe", "pipe_read", "DELETE", "/v0/pipes/ep", "PIPES:DROP:ep"),
    esc(
        "pipe_token_unpublishes", "pipe_read", "DELETE", "/v0/pipes/ep/nodes/ep_node/endpoint", "PIPES:CREATE"
    ),
    esc(
        "pipe_token_changes_node",
        "pipe_read",
        "PUT",
        "/v0/pipes/ep/nodes/ep_node",
        "PIPES:CREATE",
        data={"sql": "SELECT * FROM a_private"},
    ),
    esc(
        "pipe_token_reads_datasource", "pipe_read", "GET", "/v0/datasources/events", "DATASOURCES:READ:events"
    ),
    # workspace-level scopes used for other things
    esc("ds_create_creates_pipe", "ds_create", "POST", "/v0/pipes", "PIPES:CREATE", json=NEW_PIPE),
    esc("ds_create_drops", "ds_create", "DELETE", "/v0/datasources/events", "DATASOURCES:DROP:events"),
    esc(
        "ds_create_reads",
        "ds_create",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT count() FROM events"},
    ),
    esc(
        "pipes_create_creates_datasource",
        "pipes_create",
        "POST",
        "/v0/datasources",
        "DATASOURCES:CREATE",
        data=NEW_DS,
    ),
    esc("pipes_create_drops_pipe", "pipes_create", "DELETE", "/v0/pipes/ep", "PIPES:DROP:ep"),
    esc("pipes_create_reads_endpoint", "pipes_create", "GET", "/v0/pipes/ep.json", "PIPES:READ:ep"),
    esc(
        "pipes_create_reads_sql",
        "pipes_create",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM events"},
    ),
    esc(
        "pipes_create_appends",
        "pipes_create",
        "POST",
        "/v0/events",
        "DATASOURCES:APPEND:events",
        params={"name": "events"},
        content=EVENT,
    ),
    esc(
        "ds_drop_drops_other", "ds_drop", "DELETE", "/v0/datasources/a_private", "DATASOURCES:DROP:a_private"
    ),
    esc(
        "ds_drop_truncates_other",
        "ds_drop",
        "POST",
        "/v0/datasources/a_private/truncate",
        "DATASOURCES:DROP:a_private",
    ),
    esc(
        "ds_drop_reads",
        "ds_drop",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM events"},
    ),
    esc("pipe_drop_drops_other", "pipe_drop", "DELETE", "/v0/pipes/other", "PIPES:DROP:other"),
    esc("pipe_drop_reads", "pipe_drop", "GET", "/v0/pipes/ep.json", "PIPES:READ:ep"),
    esc(
        "read_all_appends",
        "read_all",
        "POST",
        "/v0/events",
        "DATASOURCES:APPEND:events",
        params={"name": "events"},
        content=EVENT,
    ),
    esc("read_all_creates_pipe", "read_all", "POST", "/v0/pipes", "PIPES:CREATE", json=NEW_PIPE),
    esc(
        "read_all_truncates", "read_all", "POST", "/v0/datasources/events/truncate", "DATASOURCES:DROP:events"
    ),
    # a read-only ("viewer") token changing things
    esc("viewer_creates_pipe", "viewer", "POST", "/v0/pipes", "PIPES:CREATE", json=NEW_PIPE),
    esc(
        "viewer_creates_pipe_datafile",
        "viewer",
        "POST",
        "/v0/pipes",
        "PIPES:CREATE",
        params={"name": "hostile_pipe"},
        content="NODE n\nSQL >\n    SELECT 1\n",
        headers={"Content-Type": "text/plain"},
    ),
    esc("viewer_creates_datasource", "viewer", "POST", "/v0/datasources", "DATASOURCES:CREATE", data=NEW_DS),
    esc(
        "viewer_creates_datasource_datafile",
        "viewer",
        "POST",
        "/v0/datasources",
        "DATASOURCES:CREATE",
        params={"name": "hostile_ds"},
        content="SCHEMA >\n    a UInt8\n",
    ),
    esc(
        "viewer_creates_by_events",
        "viewer",
        "POST",
        "/v0/events",
        "hostile_ds",
        status=(403, 404),
        params={"name": "hostile_ds"},
        content=EVENT,
    ),
    esc(
        "viewer_adds_node",
        "viewer",
        "POST",
        "/v0/pipes/ep/nodes",
        "PIPES:CREATE",
        data={"name": "hostile_node", "sql": "SELECT * FROM a_private"},
    ),
    esc("viewer_deletes_node", "viewer", "DELETE", "/v0/pipes/ep/nodes/ep_node", "PIPES:CREATE"),
    esc("viewer_publishes", "viewer", "POST", "/v0/pipes/other/nodes/other_node/endpoint", "PIPES:CREATE"),
    esc("viewer_renames_pipe", "viewer", "PUT", "/v0/pipes/ep", "PIPES:CREATE", data={"name": "renamed"}),
    esc(
        "viewer_materializes",
        "viewer",
        "POST",
        "/v0/pipes/other/nodes/other_node/materialization",
        "PIPES:CREATE",
        data={"datasource": "hostile_ds"},
    ),
    esc("viewer_copies", "viewer", "POST", "/v0/pipes/cp/copy", "PIPES:CREATE"),
    esc("viewer_drops_pipe", "viewer", "DELETE", "/v0/pipes/ep", "PIPES:DROP:ep"),
    esc("viewer_truncates", "viewer", "POST", "/v0/datasources/events/truncate", "DATASOURCES:DROP:events"),
    # another workspace's token
    esc(
        "b_token_reads_a_with_token_param",
        "anonymous",
        "GET",
        "/v0/pipes/ep.json",
        "'ep' does not exist",
        status=404,
        params={"token": "%TOKEN_ADMIN_B%"},
    ),
    esc(
        "b_read_token_on_a_events",
        "b_read",
        "GET",
        "/v0/sql",
        "DATASOURCES:READ:events",
        params={"q": "SELECT * FROM events"},
    ),
    # no token, a forged one
    esc("no_token", "anonymous", "GET", "/v0/sql", "Missing token", status=401, params={"q": "SELECT 1"}),
    esc(
        "forged_token",
        "anonymous",
        "GET",
        "/v0/sql",
        "Invalid token",
        params={"q": "SELECT 1", "token": "p.eyJ1IjogIngifQ.forged"},
    ),
    esc(
        "forged_bearer",
        "anonymous",
        "POST",
        "/v0/events",
        "Invalid token",
        params={"name": "events"},
        content=EVENT,
        headers={"Authorization": "Bearer %TOKEN_ADMIN_A%x"},
    ),
    # a pipe creator writing into a data source it cannot append to, with data it cannot read
    esc(
        "pipes_create_copies_unreadable",
        "pipes_create_reader",
        "POST",
        "/v0/pipes",
        "DATASOURCES:READ:a_private",
        json={
            "name": "hostile_copy",
            "nodes": [
                {
                    "name": "hostile_copy_node",
                    "type": "copy",
                    "target_datasource": "events",
                    "sql": "SELECT id, note AS event, 0.0 AS value FROM a_private",
                }
            ],
        },
    ),
    esc(
        "pipes_create_views_unreadable",
        "pipes_create_reader",
        "POST",
        "/v0/pipes",
        "DATASOURCES:READ:a_private",
        json={
            "name": "hostile_view",
            "nodes": [
                {
                    "name": "hostile_view_node",
                    "type": "materialized",
                    "datasource": "events",
                    "sql": "SELECT id, note AS event, 0.0 AS value FROM a_private",
                }
            ],
        },
    ),
    esc(
        "pipes_create_copies_without_append",
        "pipes_create",
        "POST",
        "/v0/pipes",
        "DATASOURCES:APPEND:events",
        json={
            "name": "hostile_copy",
            "nodes": [
                {
                    "name": "hostile_copy_node",
                    "type": "copy",
                    "target_datasource": "events",
                    "sql": "SELECT toUInt64(99) AS id, 'x' AS event, 0.0 AS value",
                }
            ],
        },
    ),
]
