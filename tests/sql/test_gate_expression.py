"""validate_expression (row filters, defaults, keys, TTL, delete conditions) and tables_read."""

from __future__ import annotations

import pytest

from tody.sql.gate import SQLGateError, tables_read, validate_expression

COLUMNS = ["timestamp", "a", "b", "event", "tags"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("toYYYYMM(timestamp)", "toYYYYMM(timestamp)"),
        ("a > 1 AND b = 'x'", "a > 1 AND b = 'x'"),
        ("timestamp + toIntervalDay(60)", "timestamp + toIntervalDay(60)"),
        ("timestamp + INTERVAL 60 DAY", "timestamp + INTERVAL '60' DAY"),
        ("(event, toStartOfHour(timestamp))", "(event, toStartOfHour(timestamp))"),
        ("arrayExists(x -> x = event, tags)", "arrayExists(x -> x = event, tags)"),
        ("a IN (1, 2) AND event NOT IN ('x')", "a IN (1, 2) AND NOT (event IN ('x'))"),
        ("a > 1 ? 'big' : 'small'", "CASE WHEN a > 1 THEN 'big' ELSE 'small' END"),
        ("a > 1 -- comment", "a > 1"),
        ("cityHash64(event) % 10", "cityHash64(event) % 10"),
    ],
)
def test_accepted(sql, expected, engine, gate_db):
    out = validate_expression(sql, COLUMNS)
    assert out == expected
    assert validate_expression(sql) == expected  # without a column list
    source = f"(SELECT timestamp, a, toString(a) AS b, event, tags FROM {gate_db}.events)"
    engine.query(f"SELECT {out} FROM {source} LIMIT 1")  # the regenerated expression runs


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("a > (SELECT 1)", "Subqueries"),
        ("a IN (SELECT a FROM events)", "Subqueries"),
        ("exists(SELECT 1)", "Subqueries"),
        ("a IN other.secret", "IN <table>"),
        ("a IN (events)", "IN <table>"),
        ("file('/etc/passwd') != ''", "function 'file' is not allowed"),
        ("dictGet('other.d', 's', a)", "function 'dictGet' is not allowed"),
        ("joinGet('t', 'x', a)", "function 'joinGet' is not allowed"),
        ("sleep(3) = 0", "function 'sleep' is not allowed"),
        ("currentUser() = 'x'", "function 'currentUser' is not allowed"),
        ("a > 1; DROP TABLE t", "Syntax error"),
        ("1; SELECT 2", "Syntax error"),
        ("a > 1 FROM other.secret", "Syntax error"),
        ("a > 1 SETTINGS max_threads = 1", "Syntax error"),
        ("c > 1", "Unknown column 'c'"),
        ("events.a > 1", "Unknown column 'events.a'"),
        ("other.secret.s = 'X'", "Unknown column"),
        ("{p:UInt8} = a", "Query parameters"),
        ("a AS b", "Aliases"),
        ("", "exactly one expression"),
        ("user = 'x'", "Unknown column 'user'"),
    ],
)
def test_refused(sql, error):
    with pytest.raises(SQLGateError) as info:
        validate_expression(sql, COLUMNS)
    assert error.lower() in str(info.value).lower()


def test_a_real_column_named_like_a_function_is_a_column():
    assert validate_expression("user = 'x'", ["user"]) == "user = 'x'"


def test_refused_without_columns():
    with pytest.raises(SQLGateError, match="name of a function"):
        validate_expression("user = 'x'")
    with pytest.raises(SQLGateError, match="too long"):
        validate_expression("a = " + "1" * 100, max_bytes=50)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM a JOIN b.c USING x", [("", "a", ""), ("b", "c", "")]),
        ("WITH x AS (SELECT * FROM t1) SELECT * FROM x", [("", "t1", "")]),
        ("WITH t1 AS (SELECT 1) SELECT * FROM t1, (SELECT * FROM t1) AS y", []),
        (
            "SELECT * FROM (WITH t1 AS (SELECT 1) SELECT * FROM t1) UNION ALL SELECT * FROM t1",
            [("", "t1", "")],
        ),
        ("SELECT * FROM numbers(10)", [("", "", "numbers")]),
        (
            "SELECT * FROM t WHERE x IN u AND y IN (SELECT 1 FROM v) AND z IN (1, 2)",
            [("", "t", ""), ("", "u", ""), ("", "v", "")],
        ),
        (
            "SELECT * FROM a JOIN a ON 1 JOIN tinybird.ops_log AS o ON 1",
            [("", "a", ""), ("tinybird", "ops_log", "")],
        ),
        (
            "SELECT (SELECT max(x) FROM s.t), * FROM file('x') SETTINGS a = 1 FORMAT JSON",
            [("s", "t", ""), ("", "", "file")],
        ),
        ("SELECT {p:UInt8} FROM node_1", [("", "node_1", "")]),
        ("SELECT * FROM system.tables", [("system", "tables", "")]),
    ],
)
def test_tables_read(sql, expected):
    assert tables_read(sql) == expected


def test_tables_read_without_table_functions_and_errors():
    assert tables_read("SELECT * FROM numbers(3) AS n JOIN t USING number", table_functions=False) == [
        ("", "t", "")
    ]
    with pytest.raises(SQLGateError, match="Syntax error"):
        tables_read("SELECT * FROM")
