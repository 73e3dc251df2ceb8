"""Data-driven refusals (tests/fixtures/sql/refused.json).

Each case must be refused by compile_select with a message containing the expected text, with and
without the engine's classifier. Cases marked `raw` are first run on the engine's locked-down query
path with physical names, to prove the attack would have worked there: the test cannot pass
vacuously because the engine happens to refuse the query by itself.
"""

from __future__ import annotations

import uuid

import pytest

from conftest import load_cases, logical, physical
from tody.engine.base import EngineError
from tody.engine.chdb import SANDBOX_DATABASE
from tody.sql.gate import SQLGateError, TableBinding, compile_select, validate_expression

CASES = load_cases("refused.json")


def _id(case: dict) -> str:
    return case["sql"][:60]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_refused(case, engine, gate_db, secret, resolver):
    sql = logical(case["sql"])
    if case.get("raw"):
        try:
            engine.query(physical(case["sql"], gate_db), "TabSeparated")
        except EngineError as exc:  # pragma: no cover - a failure here means the case proves nothing
            pytest.fail(f"the raw attack should work on the engine but failed: {exc}")
    with pytest.raises(SQLGateError) as info:
        compile_select(sql, resolver)
    assert case["error"].lower() in str(info.value).lower()
    with pytest.raises(SQLGateError):
        compile_select(sql, resolver, engine)


def test_physical_workspace_name_is_not_a_valid_qualifier(gate_db, resolver, engine):
    engine.query(f"SELECT count() FROM {gate_db}.events")  # the physical table exists
    with pytest.raises(SQLGateError, match="not found"):
        compile_select(f"SELECT count() FROM {gate_db}.events", resolver)


def test_system_is_refused_even_when_the_resolver_knows_it(gate_db):
    class Yes:
        def resolve(self, database, name):
            return TableBinding(gate_db, "events")

    for sql in (
        "SELECT * FROM system.one",
        "SELECT * FROM information_schema.tables",
        "SELECT 1 IN system.one",
    ):
        with pytest.raises(SQLGateError, match="system tables"):
            compile_select(sql, Yes())


def test_size_cap():
    sql = "SELECT " + " + ".join(["1"] * 200)
    with pytest.raises(SQLGateError, match="too long"):
        compile_select(sql, None, max_bytes=100)
    with pytest.raises(SQLGateError, match="too long"):
        compile_select("SELECT 'é'", None, max_bytes=10)  # bytes, not characters
    assert compile_select(sql, None, max_bytes=1000).sql.startswith("SELECT 1 + 1")


def test_comment_only_payload_is_dropped(resolver):
    compiled = compile_select("SELECT 1 /* ; DROP TABLE events */ -- ; DROP TABLE users", resolver)
    assert compiled.sql == "SELECT 1"


def test_error_messages_do_not_name_physical_tables(gate_db, resolver):
    for sql in (
        "SELECT * FROM events JOIN nope USING a",
        "SELECT file('x') FROM events",
        "SELECT * FROM events SETTINGS max_threads = 1",
    ):
        with pytest.raises(SQLGateError) as info:
            compile_select(sql, resolver)
        assert gate_db not in str(info.value)


def test_final_on_a_pipe_node_is_refused():
    class Nodes:
        def resolve(self, database, name):
            return TableBinding(subquery="SELECT 1 AS a") if name == "node" else None

    with pytest.raises(SQLGateError, match="FINAL"):
        compile_select("SELECT * FROM node FINAL", Nodes())


def test_nested_comments_are_read_as_the_engine_reads_them(engine, secret):
    # ClickHouse 26.9 nests block comments, and so does sqlglot: the subquery is inside a comment.
    for sql, expected in (
        ("SELECT 1 /* /* */, (SELECT any(s) FROM other.secret) -- */", b"1\n"),
        ("SELECT 1 /* a /* b */ c */, 2", b"1\t2\n"),
    ):
        assert engine.query(sql, "TabSeparated").data == expected
        compiled = compile_select(sql, None, engine)
        assert engine.query(compiled.sql, "TabSeparated").data == expected


def test_union_member_with_its_own_with_does_not_see_the_first_with(engine, resolver):
    """ClickHouse 26.9: in `WITH p AS (..) SELECT .. FROM p UNION ALL WITH q AS (..) SELECT .. FROM p`
    the second `p` is a table of the connection's current database, not the CTE. sqlglot hangs the
    first WITH on the whole UNION, so the gate must not treat that `p` as a CTE."""
    probe = "tody_gate_probe_" + uuid.uuid4().hex[:8]
    # query connections start in the (otherwise always empty) sandbox database
    engine.execute(f"CREATE TABLE {SANDBOX_DATABASE}.{probe} (a UInt8) ENGINE = Memory")
    try:
        engine.execute(f"INSERT INTO {SANDBOX_DATABASE}.{probe} VALUES (7), (7), (7)")
        sql = (
            f"SELECT * FROM (WITH {probe} AS (SELECT 1 AS a) SELECT count() FROM {probe} "
            f"UNION ALL WITH q AS (SELECT 2) SELECT count() FROM {probe}) ORDER BY 1"
        )
        assert engine.query(sql, "TabSeparated").data == b"1\n3\n"  # the second count read the table
        with pytest.raises(SQLGateError, match=f"Resource '{probe}' not found"):
            compile_select(sql, resolver)
        # without its own WITH the second member does see the CTE, and so does the gate
        ok = sql.replace("UNION ALL WITH q AS (SELECT 2) SELECT", "UNION ALL SELECT")
        assert engine.query(compile_select(ok, resolver).sql, "TabSeparated").data == b"1\n1\n"
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {SANDBOX_DATABASE}.{probe}")


def test_ctes_are_renamed_so_a_misread_reference_cannot_reach_a_real_table(resolver):
    compiled = compile_select("WITH x AS (SELECT 1 AS a) SELECT x.a FROM x WHERE a IN x", resolver)
    assert compiled.sql == (
        'WITH "_tody_cte_x" AS (SELECT 1 AS a) SELECT x.a FROM "_tody_cte_x" AS "x" '
        'WHERE a IN (SELECT * FROM "_tody_cte_x")'
    )


def test_deep_nesting_is_refused_cleanly_and_long_chains_compile(resolver):
    with pytest.raises(SQLGateError, match="nested too deeply"):
        compile_select("SELECT " + "(" * 200 + "1" + ")" * 200, resolver)
    with pytest.raises(SQLGateError, match="nested too deeply"):
        validate_expression("(" * 200 + "a" + ")" * 200)
    chain = "SELECT count() FROM events WHERE " + " OR ".join(f"a = {i}" for i in range(3000))
    assert compile_select(chain, resolver).sql.count(" OR ") == 2999


@pytest.mark.parametrize(
    "sql", ["SELECT 1 +", "SELECT * FROM", "SELECT (", "SELECT * FROM t WHERE", "SELEC 1"]
)
def test_syntax_errors_do_not_show_parser_internals(sql):
    with pytest.raises(SQLGateError) as info:
        compile_select(sql, None)
    message = str(info.value)
    assert "<class" not in message and "<Token" not in message and "sqlglot" not in message
