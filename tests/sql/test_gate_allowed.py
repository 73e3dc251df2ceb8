"""Data-driven control set (tests/fixtures/sql/allowed.json): each query is compiled through the gate
with logical names, executed on the engine, and must return exactly what the same query returns
when run directly on the physical tables."""

from __future__ import annotations

import pytest

from conftest import load_cases, logical, physical, rows
from tody.sql.gate import compile_select

CASES = load_cases("allowed.json")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_allowed_query_matches_raw_engine(case, engine, gate_db, resolver):
    compiled = compile_select(logical(case["sql"]), resolver, engine)
    assert compiled.output_format == case.get("format")
    assert "FORMAT" not in compiled.sql.upper().split("'")[0] or case.get("format") is None
    assert "/*" not in compiled.sql and "--" not in compiled.sql
    fmt = case.get("format") or "TabSeparated"
    expected = rows(engine, physical(case["sql"], gate_db), "TabSeparated")
    got = rows(engine, compiled.sql, fmt)
    assert got == expected, compiled.sql


def test_compiled_sql_is_physical_and_lists_logical_tables(gate_db, resolver):
    compiled = compile_select(
        "WITH x AS (SELECT * FROM events) SELECT * FROM x JOIN users AS u ON u.id = x.user_id "
        "WHERE x.user_id IN ids AND x.a IN (SELECT a FROM events)",
        resolver,
    )
    assert compiled.tables == ((None, "events"), (None, "users"), (None, "ids"))
    assert f'"{gate_db}"."events" AS "events"' in compiled.sql
    assert f'"{gate_db}"."users" AS "u"' in compiled.sql
    assert f'IN (SELECT * FROM "{gate_db}"."ids")' in compiled.sql
    assert "FORMAT" not in compiled.sql


def test_format_is_returned_not_executed(resolver):
    compiled = compile_select("SELECT 1 FORMAT JSONEachRow", resolver)
    assert (compiled.sql, compiled.output_format) == ("SELECT 1", "JSONEachRow")
    union = compile_select("SELECT 1 UNION ALL SELECT 2 FORMAT Parquet", resolver)
    assert union.output_format == "Parquet" and "FORMAT" not in union.sql


def test_qualified_names_go_to_the_resolver(gate_db):
    from conftest import DictResolver
    from tody.sql.gate import TableBinding

    resolver = DictResolver({("tinybird", "datasources_ops_log"): TableBinding(gate_db, "events")})
    compiled = compile_select("SELECT count() FROM tinybird.datasources_ops_log", resolver)
    assert resolver.calls == [("tinybird", "datasources_ops_log")]
    assert compiled.tables == (("tinybird", "datasources_ops_log"),)
    assert f'"{gate_db}"."events" AS "datasources_ops_log"' in compiled.sql
