"""Row filters and subquery bindings: every read of a bound table sees only what the binding allows,
whatever form the read takes. Each case is compared with a hand-written query on the physical
tables, and must differ from the unfiltered result so that the check is not vacuous."""

from __future__ import annotations

import pytest

from conftest import DictResolver, physical, rows
from tody.sql.gate import TableBinding, compile_select

EV = "(SELECT * FROM {db}.events WHERE a > 5)"
IDS = "(SELECT * FROM {db}.ids WHERE id > 0)"

# (name, query through the gate, equivalent query on physical tables with the filter written out)
CASES = [
    ("from", "SELECT a FROM events ORDER BY a", f"SELECT a FROM {EV} ORDER BY a"),
    (
        "from with alias",
        "SELECT e.a FROM events AS e ORDER BY e.a",
        f"SELECT e.a FROM {EV} AS e ORDER BY e.a",
    ),
    (
        "join",
        "SELECT u.id, e.a FROM users AS u FINAL JOIN events AS e ON e.user_id = u.id ORDER BY e.a",
        f"SELECT u.id, e.a FROM {{db}}.users AS u FINAL JOIN {EV} AS e ON e.user_id = u.id ORDER BY e.a",
    ),
    ("subquery", "SELECT count() FROM (SELECT * FROM events)", f"SELECT count() FROM (SELECT * FROM {EV})"),
    ("scalar subquery", "SELECT (SELECT min(a) FROM events)", f"SELECT (SELECT min(a) FROM {EV})"),
    (
        "in subquery",
        "SELECT number FROM numbers(20) WHERE number IN (SELECT a FROM events) ORDER BY number",
        f"SELECT number FROM numbers(20) WHERE number IN (SELECT a FROM {EV}) ORDER BY number",
    ),
    (
        "in table",
        "SELECT number FROM numbers(3) WHERE number IN ids ORDER BY number",
        f"SELECT number FROM numbers(3) WHERE number IN {IDS} ORDER BY number",
    ),
    (
        "in parenthesised table",
        "SELECT number FROM numbers(3) WHERE number NOT IN (ids) ORDER BY number",
        f"SELECT number FROM numbers(3) WHERE number NOT IN {IDS} ORDER BY number",
    ),
    (
        "cte body",
        "WITH x AS (SELECT a FROM events) SELECT count(), min(a) FROM x",
        f"WITH x AS (SELECT a FROM {EV}) SELECT count(), min(a) FROM x",
    ),
    (
        "union branch",
        "SELECT count() FROM (SELECT id AS a FROM users UNION ALL SELECT a FROM events)",
        f"SELECT count() FROM (SELECT id AS a FROM {{db}}.users UNION ALL SELECT a FROM {EV})",
    ),
    (
        "exists",
        "SELECT count() FROM numbers(1) WHERE exists(SELECT 1 FROM events WHERE a < 3)",
        f"SELECT count() FROM numbers(1) WHERE exists(SELECT 1 FROM {EV} WHERE a < 3)",
    ),
    (
        "sample and prewhere",
        "SELECT count() FROM events AS e SAMPLE 1/2 PREWHERE user_id = 1 WHERE a < 15",
        "SELECT count() FROM {db}.events SAMPLE 1/2 WHERE a > 5 AND user_id = 1 AND a < 15",
    ),
    (
        "array join",
        "SELECT a, t FROM events ARRAY JOIN tags AS t ORDER BY a, t",
        f"SELECT a, t FROM {EV} ARRAY JOIN tags AS t ORDER BY a, t",
    ),
]


@pytest.fixture
def filtered(gate_db):
    return DictResolver(
        {
            (None, "events"): TableBinding(gate_db, "events", row_filter="a > 5"),
            (None, "users"): TableBinding(gate_db, "users"),
            (None, "ids"): TableBinding(gate_db, "ids", row_filter="id > 0"),
        }
    )


@pytest.mark.parametrize(("name", "gate_sql", "raw_sql"), CASES, ids=[c[0] for c in CASES])
def test_row_filter_applies_to_every_read(name, gate_sql, raw_sql, engine, gate_db, filtered, resolver):
    compiled = compile_select(gate_sql, filtered, engine)
    got = rows(engine, compiled.sql)
    assert got == rows(engine, physical(raw_sql, gate_db)), compiled.sql
    unfiltered = rows(engine, compile_select(gate_sql, resolver).sql)
    assert got != unfiltered, "the filter made no difference: the case proves nothing"


def test_final_moves_inside_the_filtered_subquery(engine, gate_db):
    resolver = DictResolver({(None, "users"): TableBinding(gate_db, "users", row_filter="country = 'FR'")})
    compiled = compile_select("SELECT id, name FROM users FINAL ORDER BY id", resolver)
    assert "FINAL WHERE (country = 'FR')" in compiled.sql
    assert rows(engine, compiled.sql) == b"1\tbob\n"


def test_pipe_node_binding_is_inlined(engine, gate_db, resolver):
    node = f'SELECT a, event FROM "{gate_db}"."events" WHERE a < 4'
    bindings = dict(resolver.bindings)
    bindings[(None, "top")] = TableBinding(subquery=node)
    bindings[(None, "top_f")] = TableBinding(subquery=node, row_filter="a > 1")
    nodes = DictResolver(bindings)
    assert rows(engine, compile_select("SELECT count() FROM top", nodes).sql) == b"4\n"
    assert rows(engine, compile_select("SELECT count() FROM top_f AS t", nodes).sql) == b"2\n"
    sql = compile_select("SELECT count() FROM events WHERE (a, event) IN top", nodes).sql
    assert rows(engine, sql) == b"4\n"
    sql = compile_select("SELECT count() FROM events WHERE (a, event) IN top_f", nodes).sql
    assert rows(engine, sql) == b"2\n"


def test_filter_cannot_be_escaped_by_qualifying_columns_or_aliases(engine, gate_db, filtered):
    for sql in (
        "SELECT count() FROM events AS events WHERE events.a >= 0",
        "SELECT count() FROM events AS e WHERE e.a >= 0 OR 1",
        "SELECT count() FROM (SELECT * FROM events) AS events",
        "SELECT count() FROM events PREWHERE 1",
    ):
        compiled = compile_select(sql, filtered)
        assert rows(engine, compiled.sql) == b"14\n", compiled.sql
