"""The world every hostile-input case runs against (one per test process, built once).

Workspace A is the attacker's: `events` (10 rows), `a_private` (a data source most tokens cannot
read), the published endpoint `ep` with typed parameters of every kind, `other` and `gen` endpoints,
a copy pipe `cp`, and tokens of many scopes. Workspace B is the victim: `events`, `secret` (holding
TOPSECRET_B), a dictionary and a Join table over it, and its own endpoint `b_ep`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from hostile import World

from tody.services.tokens import Scope

EP_SQL = """%
SELECT id, event, value FROM events
WHERE 1 = 1
{% if defined(s) %} AND event = {{ String(s) }} {% end %}
{% if defined(i8) %} AND id = {{ Int8(i8) }} {% end %}
{% if defined(i) %} AND id = {{ Int32(i) }} {% end %}
{% if defined(u64) %} AND id < {{ UInt64(u64) }} {% end %}
{% if defined(i256) %} AND id < {{ Int256(i256) }} {% end %}
{% if defined(f32) %} AND value < {{ Float32(f32) }} {% end %}
{% if defined(f) %} AND value < {{ Float64(f) }} {% end %}
{% if defined(b) %} AND {{ Boolean(b) }} {% end %}
{% if defined(d) %} AND toDate('2024-01-01') + id < {{ Date(d) }} {% end %}
{% if defined(dt) %} AND toDateTime('2024-01-01 00:00:00', 'UTC') + id < {{ DateTime(dt) }} {% end %}
{% if defined(dt64) %} AND toDateTime64('2024-01-01 00:00:00', 3, 'UTC') + id < {{ DateTime64(dt64) }} {% end %}
{% if defined(uuid) %} AND {{ UUID(uuid) }} != '' {% end %}
{% if defined(j) %} AND event = JSONExtractString({{ JSON(j) }}, 'k') {% end %}
{% if defined(arr) %} AND event IN {{ Array(arr, 'String') }} {% end %}
{% if defined(ids) %} AND id IN {{ Array(ids, 'Int32') }} {% end %}
{% if defined(raw) %} AND event = {{ raw }} {% end %}
{% if defined(sp) %} AND event IN {{ split_to_array(sp) }} {% end %}
{% if defined(like) %} AND event LIKE {{ sql_unescape(String(like), '%') }} {% end %}
{% if defined(en) %} AND event = {{ enum_with_default(en, 'click', enum=['click', 'view']) }} {% end %}
AND {{ sql_and(event__in=Array(ev, 'String', defined=False), id__lt=Int32(lt, defined=False)) }}
ORDER BY {{ column(col, 'id') }}
{% if defined(cols) %}, {{ columns(cols) }}{% end %}
{% if defined(sym) %}, {{ symbol(sym) }}{% end %}
LIMIT {{ Int32(limit, 100) }}
"""

GEN_SQL = "%\nSELECT number, repeat('x', {{ UInt32(times, 1) }}) AS s FROM numbers({{ UInt64(n, 10) }})"

# label -> scopes, in workspace A (B's tokens are made below)
A_TOKENS = {
    "append": ["DATASOURCES:APPEND:events"],
    "read": ["DATASOURCES:READ:events"],
    "filtered": ["DATASOURCES:READ:events:id < 3"],
    "filtered_pipe": ["DATASOURCES:READ:events:id < 3", "PIPES:READ:ep"],
    "pipe_read": ["PIPES:READ:ep"],
    "pipes_create": ["PIPES:CREATE"],
    "pipes_create_reader": ["PIPES:CREATE", "DATASOURCES:READ:events"],
    "ds_create": ["DATASOURCES:CREATE"],
    "ds_drop": ["DATASOURCES:DROP:events"],
    "pipe_drop": ["PIPES:DROP:ep"],
    "read_all": ["WORKSPACE:READ_ALL"],
    "viewer": ["DATASOURCES:READ:events", "PIPES:READ:ep", "PIPES:READ:other"],
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a hostile case stopped by the time limit (seconds, not ms)")


def _ok(res):
    assert res.status_code < 300, res.text
    return res.json() if res.content else None


@pytest.fixture(scope="session")
def world(platform, app) -> World:
    org = platform.catalog.organizations()[0]
    suffix = uuid.uuid4().hex[:8]
    a, a_token = platform.workspaces.create(org.id, f"sec_a_{suffix}")
    b, b_token = platform.workspaces.create(org.id, f"sec_b_{suffix}")
    w = World(platform=platform, app=app, a=a, b=b, tokens={"admin_a": a_token, "admin_b": b_token})
    engine = platform.engine

    def datasource(label: str, name: str, schema: str) -> str:
        form = {"name": name, "schema": schema, "engine_sorting_key": "id"}
        return _ok(w.client(label).post("/v0/datasources", data=form))["datasource"]["id"]

    a_events = datasource("admin_a", "events", "`id` UInt64, `event` String, `value` Float64")
    a_private = datasource("admin_a", "a_private", "`id` UInt64, `note` String")
    b_events = datasource("admin_b", "events", "`id` UInt64, `event` String, `value` Float64")
    b_secret = datasource("admin_b", "secret", "`id` UInt64, `s` String")
    engine.execute(
        f"INSERT INTO {a.database}.{a_events} SELECT number, ['click', 'view', 'buy'][number % 3 + 1], "
        "number * 1.5 FROM numbers(10)"
    )
    engine.execute(f"INSERT INTO {a.database}.{a_private} VALUES (1, 'A_PRIVATE_ROW')")
    engine.execute(f"INSERT INTO {b.database}.{b_events} SELECT number, 'b_event', 0 FROM numbers(4)")
    engine.execute(f"INSERT INTO {b.database}.{b_secret} VALUES (1, 'TOPSECRET_B'), (2, 'TOPSECRET_B')")
    # Things in B's database that name tables inside strings: a dictionary and a Join table.
    engine.execute(
        f"CREATE DICTIONARY {b.database}.secret_dict (id UInt64, s String) PRIMARY KEY id "
        f"SOURCE(CLICKHOUSE(DB '{b.database}' TABLE '{b_secret}')) LAYOUT(FLAT()) LIFETIME(0)"
    )
    engine.execute(
        f"CREATE TABLE {b.database}.secret_join (id UInt64, s String) ENGINE = Join(ANY, LEFT, id)"
    )
    engine.execute(f"INSERT INTO {b.database}.secret_join VALUES (1, 'TOPSECRET_B')")

    admin_a = w.client("admin_a")
    for name, node in [
        ("ep", {"name": "ep_node", "type": "endpoint", "sql": EP_SQL}),
        ("other", {"name": "other_node", "type": "endpoint", "sql": "SELECT count() AS c FROM events"}),
        ("gen", {"name": "gen_node", "type": "endpoint", "sql": GEN_SQL}),
        (
            "mv",
            {
                "name": "mv_node",
                "type": "materialized",
                "datasource": "events_mv",
                "engine": "MergeTree",
                "engine_sorting_key": "id",
                "sql": "SELECT id, value FROM events",
            },
        ),
        (
            "cp",
            {
                "name": "cp_node",
                "type": "copy",
                "target_datasource": "events",
                "sql": "SELECT id, event, value FROM events WHERE id > 1000",
            },
        ),
    ]:
        _ok(admin_a.post("/v0/pipes", json={"name": name, "nodes": [node]}))
    b_ep = {"name": "b_ep_node", "type": "endpoint", "sql": "SELECT s FROM secret"}
    _ok(w.client("admin_b").post("/v0/pipes", json={"name": "b_ep", "nodes": [b_ep]}))

    for label, scopes in A_TOKENS.items():
        _, w.tokens[label] = platform.tokens.create(a, f"sec_{label}", [Scope.parse(s) for s in scopes])
    _, w.tokens["b_read"] = platform.tokens.create(b, "sec_b_read", [Scope.parse("DATASOURCES:READ:secret")])

    job = _ok(admin_a.post("/v0/pipes/cp/copy"))["id"]  # a job of A's (it copies no rows)
    deadline = time.monotonic() + 20
    while (
        _ok(admin_a.get(f"/v0/jobs/{job}"))["status"] not in ("done", "error") and time.monotonic() < deadline
    ):
        time.sleep(0.05)

    pwned = f"tody_pwned_{suffix}.txt"
    data_dir, engine_dir = platform.config.data_path, Path(engine.path)
    w.names = {
        "A_NAME": a.name,
        "B_NAME": b.name,
        "A_JOB": job,
        "A_DB": a.database,
        "A_EVENTS": a_events,
        "A_PRIVATE": a_private,
        "B_DB": b.database,
        "B_EVENTS": b_events,
        "B_SECRET": b_secret,
        "PWN": pwned,
        "PWN_ABS": str(data_dir / pwned),
        "ENGINE_DIR": str(engine_dir),
        "TOKEN_ADMIN_A": a_token,
        "TOKEN_ADMIN_B": b_token,
    }
    w.canaries = (
        Path.cwd() / pwned,
        data_dir / pwned,
        engine_dir / pwned,
        engine_dir / "user_files" / pwned,
        Path("/tmp") / pwned,
    )
    return w
