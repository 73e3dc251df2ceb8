"""Row-level security over HTTP: a DATASOURCES:READ filter holds wherever the data source is read.

`events` has 30 rows: ids 0..29 and event cycling click/view/buy. The filter `event = 'click'` leaves
10 rows (ids 0, 3, …, 27); every read below must see exactly those, whatever its shape.
"""

from __future__ import annotations

import pytest
from api_helpers import ok
from starlette.testclient import TestClient

from tody.services.tokens import Scope

CLICKS = 10
CLICK_ID_SUM = sum(range(0, 30, 3))


@pytest.fixture
def filtered(app, client, make_events, platform, workspace):
    make_events(rows=30)
    ok(
        client.post(
            "/v0/datasources", data={"name": "users", "schema": "`id` UInt64", "engine_sorting_key": "id"}
        )
    )
    ok(client.post("/v0/events", params={"name": "users", "wait": "true"}, content=b'{"id": 3}\n{"id": 4}\n'))
    pipe = {
        "name": "chain",
        "nodes": [
            {"name": "raw", "sql": "SELECT id, event FROM events"},
            {"name": "agg", "sql": "SELECT count() AS c, sum(id) AS s FROM raw", "type": "endpoint"},
        ],
    }
    ok(client.post("/v0/pipes", json=pipe))
    scopes = ["DATASOURCES:READ:events:event = 'click'", "DATASOURCES:READ:users", "PIPES:READ:chain"]
    _, value = platform.tokens.create(workspace, "rls", [Scope.parse(s) for s in scopes])
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        yield c


READS = [
    ("plain", "SELECT count() AS c, sum(id) AS s FROM events"),
    ("alias", "SELECT count() AS c, sum(e.id) AS s FROM events AS e"),
    ("subquery", "SELECT count() AS c, sum(id) AS s FROM (SELECT * FROM events)"),
    ("nested", "SELECT count() AS c, sum(id) AS s FROM (SELECT id FROM (SELECT id, event FROM events))"),
    (
        "union",
        "SELECT count() AS c, sum(id) AS s FROM (SELECT id FROM events UNION ALL SELECT id FROM events WHERE 0)",
    ),
    ("in", "SELECT count() AS c, sum(number) AS s FROM numbers(30) WHERE number IN (SELECT id FROM events)"),
    ("prewhere", "SELECT count() AS c, sum(id) AS s FROM events PREWHERE id >= 0"),
    ("limit by", "SELECT count() AS c, sum(id) AS s FROM (SELECT id FROM events LIMIT 1 BY id)"),
    ("cte", "WITH x AS (SELECT * FROM events) SELECT count() AS c, sum(id) AS s FROM x"),
    (
        "cte shadowing the name",
        "WITH events AS (SELECT * FROM events) SELECT count() AS c, sum(id) AS s FROM events",
    ),
    ("scalar", "SELECT (SELECT count() FROM events) AS c, (SELECT sum(id) FROM events) AS s"),
    (
        "join",
        "SELECT count() AS c, sum(a.id) AS s FROM events AS a JOIN events AS b ON a.id = b.id",
    ),
    (
        "left join from another table",
        "SELECT countIf(e.event != '') AS c, sum(e.id) AS s FROM numbers(30) AS n LEFT JOIN events AS e ON e.id = n.number",
    ),
    ("pipe node", "SELECT c, s FROM chain"),
]


@pytest.mark.parametrize("name, sql", READS, ids=[r[0] for r in READS])
def test_the_filter_holds_in_the_query_api(filtered, name, sql):
    data = ok(filtered.get("/v0/sql", params={"q": sql}))["data"]
    assert [(int(data[0]["c"]), int(data[0]["s"]))] == [(CLICKS, CLICK_ID_SUM)], data


def test_the_filter_holds_through_every_node_of_an_endpoint_and_q(client, filtered):
    ok(client.post("/v0/pipes/chain/nodes/agg/endpoint"))
    assert ok(filtered.get("/v0/pipes/chain.json"))["data"] == [{"c": CLICKS, "s": CLICK_ID_SUM}]
    res = filtered.get("/v0/pipes/chain.json", params={"q": "SELECT c, s FROM _"})
    assert ok(res)["data"] == [{"c": CLICKS, "s": CLICK_ID_SUM}]
    res = filtered.get("/v0/pipes/chain.json", params={"q": "SELECT count() AS c, sum(id) AS s FROM events"})
    assert ok(res)["data"] == [{"c": CLICKS, "s": CLICK_ID_SUM}]
    # the admin sees everything: the filter is the token's, not the pipe's
    assert ok(client.get("/v0/pipes/chain.json"))["data"] == [{"c": 30, "s": sum(range(30))}]


def test_unfiltered_tables_next_to_a_filtered_one_are_whole(filtered):
    data = ok(filtered.get("/v0/sql", params={"q": "SELECT count() AS c FROM users"}))["data"]
    assert data == [{"c": 2}]
    sql = "SELECT count() AS c FROM users WHERE id IN (SELECT id FROM events)"
    assert ok(filtered.get("/v0/sql", params={"q": sql}))["data"] == [{"c": 1}]  # 3 is a click, 4 is not


def test_a_filtered_token_cannot_read_the_quarantine(filtered):
    res = filtered.get("/v0/sql", params={"q": "SELECT count() FROM events_quarantine"})
    assert res.status_code == 403 and "events_quarantine" in res.json()["error"]


def test_a_filter_over_a_pipe_scope_filters_its_output(app, client, filtered, platform, workspace):
    ok(client.post("/v0/pipes/chain/nodes/raw/endpoint"))
    _, value = platform.tokens.create(workspace, "pipe_rls", [Scope.parse("PIPES:READ:chain:event = 'buy'")])
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        data = ok(c.get("/v0/pipes/chain.json", params={"q": "SELECT count() AS c, uniq(event) AS u FROM _"}))
    assert data["data"] == [{"c": 10, "u": 1}]
