"""Bulk imports: the special cases (CSV traps, NDJSON shapes, Parquet conversions) and the quarantine rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tody.engine.base import quote_identifier
from tody.engine.ddl import Column, TableEngine, create_table_sql
from tody.services.ingest.bulk import import_file
from tody.services.ingest.formats import CsvDialect, ImportFormatError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ingest"


def setup(engine, database, columns, name="ds"):
    engine.execute(create_table_sql(database, name, columns, TableEngine(sorting_key="tuple()")))
    return name


def rows(engine, sql):
    data = engine.execute(sql, "JSONEachRow").data.decode()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def quarantine(engine, database, table="ds", order="c__error"):
    name = quote_identifier(table + "_quarantine")
    return rows(
        engine, f"SELECT * EXCEPT (insertion_date, c__import_id) FROM {database}.{name} ORDER BY {order}"
    )


def accounting(result):
    assert result.rows_received == result.rows_stored + result.rows_quarantined
    return (result.rows_received, result.rows_stored, result.rows_quarantined, result.empty_lines)


# ---------------------------------------------------------------------------------------------------
# CSV

MIXED_COLUMNS = [
    Column("id", "UInt64"),
    Column("name", "String"),
    Column("amount", "Float64"),
    Column("note", "Nullable(String)"),
]


@pytest.mark.parametrize("method", ["file", "stream", "infile"])
def test_csv_bom_crlf_header_multiline_and_bad_rows(engine, database, method):
    """mixed.csv: BOM, header, CRLF, a quoted field over three lines, an empty line, a bad value,
    too many and too few fields, and empty fields."""
    table = setup(engine, database, MIXED_COLUMNS)
    result = import_file(
        engine, database, table, MIXED_COLUMNS, FIXTURES / "mixed.csv", "csv", import_id="m", method=method
    )
    assert accounting(result) == (6, 2, 4, 1)
    stored = rows(engine, f"SELECT * FROM {database}.{table} ORDER BY id")
    assert stored == [
        {"id": 1, "name": "Smith, John", "amount": 10.5, "note": "plain"},
        {"id": 2, "name": "multi\r\nline\nvalue", "amount": 20, "note": 'say "hi"'},
    ]
    q = {r["id"]: r for r in quarantine(engine, database)}
    assert q["3"]["c__error"] == ["value 'abc' on column 'amount' is not Float64"]
    assert q["3"]["c__error_column"] == ["amount"]
    assert q["3"]["name"] == "bad amount"
    assert q["4"]["c__error"] == ["expected 4 fields, found 5"]
    assert q["4"]["c__error_column"] == []
    assert (q["4"]["name"], q["4"]["amount"], q["4"]["note"]) == ("too", "many", "fields")
    assert q["5"]["c__error"] == ["expected 4 fields, found 2"]
    # an empty field in a non-nullable Float64 column: quarantined, like Tinybird's `value ''` message
    assert q["6"]["c__error"] == ["value '' on column 'amount' is not Float64"]
    assert q["6"]["note"] == ""


def test_csv_empty_field_rules(engine, database, tmp_path):
    columns = [
        Column("k", "UInt32"),
        Column("i", "Int32"),
        Column("ni", "Nullable(Int32)"),
        Column("s", "String"),
        Column("ns", "Nullable(String)"),
        Column("di", "Int32", default="k * 10"),
        Column("d", "Date"),
    ]
    table = setup(engine, database, columns)
    path = tmp_path / "e.csv"
    path.write_text('1,5,,,,,2024-01-01\n2,,1,"",\\N,,2024-01-02\n3,7,\\N,x,y,4,\n4,7,1,x,y,4,2024-02-30\n')
    result = import_file(engine, database, table, columns, path, "csv", import_id="e", has_header=False)
    assert accounting(result) == (4, 1, 3, 0)
    assert rows(engine, f"SELECT * FROM {database}.{table}") == [
        {"k": 1, "i": 5, "ni": None, "s": "", "ns": None, "di": 10, "d": "2024-01-01"}
    ]
    q = {r["k"]: r["c__error"] for r in quarantine(engine, database)}
    assert q["2"] == ["value '' on column 'i' is not Int32"]
    assert q["3"] == ["value '' on column 'd' is not Date"]
    assert q["4"] == ["value '2024-02-30' on column 'd' is not Date"]


def test_csv_bom_without_header_is_not_part_of_the_first_value(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("name", "String")]
    table = setup(engine, database, columns)
    path = tmp_path / "bom.csv"
    path.write_bytes(b'\xef\xbb\xbf"1",a\r\n2,b\r\n')
    for method in ("file", "stream", "infile"):
        result = import_file(engine, database, table, columns, path, "csv", import_id=method, method=method)
        assert accounting(result) == (2, 2, 0, 0)
    assert rows(engine, f"SELECT id, count() AS n FROM {database}.{table} GROUP BY id ORDER BY id") == [
        {"id": 1, "n": 3},
        {"id": 2, "n": 3},
    ]


def test_csv_header_maps_columns_by_name(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("name", "String"), Column("score", "Nullable(Float32)")]
    table = setup(engine, database, columns)
    path = tmp_path / "h.csv"
    path.write_text("NAME,Id,unused\nana,1,x\nbob,2,y\n")
    result = import_file(engine, database, table, columns, path, "csv", import_id="h")
    assert accounting(result) == (2, 2, 0, 0)
    assert rows(engine, f"SELECT * FROM {database}.{table} ORDER BY id") == [
        {"id": 1, "name": "ana", "score": None},
        {"id": 2, "name": "bob", "score": None},
    ]


def test_csv_header_with_other_names_maps_by_position(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("name", "String")]
    table = setup(engine, database, columns)
    path = tmp_path / "h.csv"
    path.write_text("identifier,label\n1,ana\n2,bob\n")
    result = import_file(engine, database, table, columns, path, "csv", import_id="h")
    assert accounting(result) == (2, 2, 0, 0)


def test_csv_without_header_keeps_the_first_row(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("name", "String")]
    table = setup(engine, database, columns)
    path = tmp_path / "n.csv"
    path.write_text("1,ana\n2,bob\n")
    assert accounting(import_file(engine, database, table, columns, path, "csv", import_id="n")) == (
        2,
        2,
        0,
        0,
    )


def test_csv_broken_quotes_and_blank_lines(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("name", "String")]
    table = setup(engine, database, columns)
    path = tmp_path / "b.csv"
    path.write_text('1,ok\n   \n2,"bro"ken\n\n3,"multi\nline"\n4,also ok\n\n\n')
    result = import_file(engine, database, table, columns, path, "csv", import_id="b")
    assert accounting(result) == (4, 3, 1, 4)
    (bad,) = quarantine(engine, database)
    assert bad["id"] == "2"
    assert bad["c__error"][0].startswith("the line is not valid CSV")
    assert rows(engine, f"SELECT name FROM {database}.{table} WHERE id = 3") == [{"name": "multi\nline"}]


def test_csv_dialect_delimiter(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("name", "String")]
    table = setup(engine, database, columns)
    path = tmp_path / "d.csv"
    path.write_text("1;a,b\n2;c\nx;d\n")
    result = import_file(
        engine, database, table, columns, path, "csv", import_id="d", csv_dialect=CsvDialect(delimiter=";")
    )
    assert accounting(result) == (3, 2, 1, 0)
    assert rows(engine, f"SELECT name FROM {database}.{table} ORDER BY id") == [
        {"name": "a,b"},
        {"name": "c"},
    ]
    with pytest.raises(ImportFormatError):
        import_file(
            engine,
            database,
            table,
            columns,
            path,
            "csv",
            import_id="d",
            csv_dialect=CsvDialect(escapechar="\\"),
        )
    with pytest.raises(ImportFormatError):
        import_file(engine, database, table, columns, path, "xml", import_id="d")


def test_hostile_values_and_names_are_data(engine, database, tmp_path):
    columns = [Column("id", "UInt64"), Column("we'ird `col`", "String"), Column("n", "Int8")]
    table = setup(engine, database, columns, name="ta'ble")
    evil = "x'); DROP TABLE t; --\\'\"`"
    path = tmp_path / "it's.csv"
    path.write_text(
        f'1,"{evil.replace(chr(34), chr(34) * 2)}",1\n2,ok,"{evil.replace(chr(34), chr(34) * 2)}"\n'
    )
    result = import_file(engine, database, table, columns, path, "csv", import_id="x'y", has_header=False)
    assert accounting(result) == (2, 1, 1, 0)
    assert rows(engine, f"SELECT `we\\'ird \\`col\\`` AS v FROM {database}.`ta'ble`") == [{"v": evil}]
    (bad,) = quarantine(engine, database, table="ta'ble")
    assert bad["n"] == evil
    assert bad["c__error"] == [f"value '{evil}' on column 'n' is not Int8"]


def test_empty_and_header_only_files(engine, database, tmp_path):
    columns = [Column("id", "UInt64")]
    table = setup(engine, database, columns)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert accounting(import_file(engine, database, table, columns, empty, "csv", import_id="e")) == (
        0,
        0,
        0,
        0,
    )
    header = tmp_path / "header.csv"
    header.write_text("id\n")
    result = import_file(engine, database, table, columns, header, "csv", import_id="h", has_header=True)
    assert accounting(result) == (0, 0, 0, 0)
    assert result.error is None


# ---------------------------------------------------------------------------------------------------
# NDJSON

NESTED_COLUMNS = [
    Column("id", "UInt64", jsonpath="$.id"),
    Column("user_name", "String", jsonpath="$.user.name"),
    Column("tags", "Array(String)", jsonpath="$.user.tags[:]"),
    Column("scores", "Array(UInt8)", jsonpath="$.scores[:]"),
    Column("ts", "DateTime", jsonpath="$.ts"),
    Column("deep", "Nullable(String)", jsonpath="$.extra.deep"),
    Column("doc", "String", jsonpath="$"),
]


@pytest.mark.parametrize("method", ["file", "stream"])
def test_ndjson_paths_and_bad_lines(engine, database, method):
    table = setup(engine, database, NESTED_COLUMNS)
    result = import_file(
        engine,
        database,
        table,
        NESTED_COLUMNS,
        FIXTURES / "nested.ndjson",
        "ndjson",
        import_id="n",
        method=method,
    )
    assert accounting(result) == (7, 2, 5, 1)
    stored = rows(engine, f"SELECT * EXCEPT doc FROM {database}.{table} ORDER BY id")
    assert stored == [
        {
            "id": 1,
            "user_name": "ana",
            "tags": ["a", "b"],
            "scores": [1, 2, 3],
            "ts": "2024-01-01 10:00:00",
            "deep": None,
        },
        {"id": 2, "user_name": "bob", "tags": [], "scores": [], "ts": "2024-01-02 11:30:00", "deep": "true"},
    ]
    doc = rows(engine, f"SELECT doc FROM {database}.{table} WHERE id = 1")[0]["doc"]
    assert json.loads(doc)["user"]["name"] == "ana"
    q = quarantine(engine, database, order="doc")
    by_doc = {(r["doc"] or "")[:20]: r for r in q}
    three = next(r for r in q if r["id"] == "three")
    assert three["c__error_column"] == ["id", "scores", "ts"]
    assert three["c__error"] == [
        "value 'three' on column 'id' is not UInt64",
        "value '[1,\"x\"]' on column 'scores' is not Array(UInt8)",
        "value '2024-13-45 99:00:00' on column 'ts' is not DateTime",
    ]
    assert three["user_name"] == "cy"
    missing = next(r for r in q if r["user_name"] == "no id")
    assert missing["c__error"] == ["column 'id' has no value, and it is not Nullable and has no DEFAULT"]
    not_json = next(r for r in q if r["c__error"][0].startswith("the line is not valid JSON"))
    assert not_json["c__error"] == ["the line is not valid JSON: this is not json"]
    assert not_json["id"] is None and not_json["doc"] == "this is not json"
    array_line = next(r for r in q if "not a JSON object" in r["c__error"][0])
    assert array_line["id"] is None
    not_object = next(r for r in q if r["id"] == "5")
    assert not_object["c__error_column"] == ["user_name"]
    assert by_doc  # every quarantined row keeps the original line in the `$` column


def test_ndjson_missing_null_default_and_nullable(engine, database, tmp_path):
    columns = [
        Column("id", "UInt64"),
        Column("n", "Nullable(Int32)"),
        Column("d", "Int32", default="42"),
        Column("s", "String", jsonpath="$.s"),
        Column("lc", "LowCardinality(String)", jsonpath="$['odd key']"),
    ]
    table = setup(engine, database, columns)
    path = tmp_path / "m.ndjson"
    lines = [
        {"id": 1, "s": "a", "odd key": "k"},
        {"id": 2, "n": None, "d": None, "s": "b", "odd key": "k"},
        {"id": 3, "n": 7, "d": 8, "s": None, "odd key": "k"},
        {"id": 4, "n": "x", "d": 1, "s": "", "odd key": "k"},
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(json.dumps(x) for x in lines).encode() + b"\r\n  \r\n")
    result = import_file(engine, database, table, columns, path, "ndjson", import_id="m")
    assert accounting(result) == (4, 2, 2, 1)
    assert rows(engine, f"SELECT * FROM {database}.{table} ORDER BY id") == [
        {"id": 1, "n": None, "d": 42, "s": "a", "lc": "k"},
        {"id": 2, "n": None, "d": 42, "s": "b", "lc": "k"},
    ]
    q = {r["id"]: r["c__error"] for r in quarantine(engine, database)}
    assert q["3"] == ["column 's' has no value, and it is not Nullable and has no DEFAULT"]
    assert q["4"] == ["value 'x' on column 'n' is not Nullable(Int32)"]


# ---------------------------------------------------------------------------------------------------
# Parquet


def test_parquet_value_errors_are_row_errors(engine, database, tmp_path):
    path = tmp_path / "p.parquet"
    path.write_bytes(
        engine.execute(
            "SELECT number AS id, toInt64(number * 100) AS small, if(number = 3, NULL, toString(number)) AS s, "
            "if(number = 4, 'nope', '2024-01-01') AS day, [number] AS arr FROM numbers(6)",
            "Parquet",
        ).data
    )
    columns = [
        Column("id", "UInt64"),
        Column("small", "UInt8"),
        Column("s", "String"),
        Column("day", "Date", jsonpath="$.day"),
        Column("arr", "Array(UInt64)", jsonpath="$.arr[:]"),
        Column("absent", "Nullable(String)"),
        Column("absent_default", "UInt8", default="7"),
    ]
    table = setup(engine, database, columns)
    result = import_file(engine, database, table, columns, path, "parquet", import_id="p")
    # small: 300, 400, 500 overflow UInt8; s NULL at 3; day bad at 4
    assert accounting(result) == (6, 3, 3, 0)
    assert rows(
        engine, f"SELECT id, small, arr, absent, absent_default FROM {database}.{table} ORDER BY id"
    ) == [
        {"id": 0, "small": 0, "arr": [0], "absent": None, "absent_default": 7},
        {"id": 1, "small": 100, "arr": [1], "absent": None, "absent_default": 7},
        {"id": 2, "small": 200, "arr": [2], "absent": None, "absent_default": 7},
    ]
    q = {r["id"]: r["c__error"] for r in quarantine(engine, database)}
    assert q["3"] == [
        "value '300' on column 'small' is not UInt8",
        "column 's' has no value, and it is not Nullable and has no DEFAULT",
    ]
    assert q["4"] == [
        "value '400' on column 'small' is not UInt8",
        "value 'nope' on column 'day' is not Date",
    ]


def test_parquet_that_is_not_parquet_fails_cleanly(engine, database, tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("id\n1\n")
    columns = [Column("id", "UInt64")]
    table = setup(engine, database, columns)
    with pytest.raises(Exception) as info:
        import_file(engine, database, table, columns, path, "parquet", import_id="x")
    assert "Parquet" in str(info.value) or "parquet" in str(info.value)


def test_ndjson_overlapping_and_indexed_paths(engine, database, tmp_path):
    columns = [
        Column("obj", "String", jsonpath="$.a"),  # the object itself, as JSON text
        Column("inner", "Int32", jsonpath="$.a.b"),  # and a key inside it
        Column("first", "Nullable(String)", jsonpath="$.list[0]"),
        Column("second_x", "Nullable(Int64)", jsonpath="$.list[1].x"),
    ]
    table = setup(engine, database, columns)
    path = tmp_path / "p.ndjson"
    path.write_text('{"a": {"b": 1}, "list": ["q", {"x": 5}]}\n{"a": {"b": 2}}\n')
    assert accounting(import_file(engine, database, table, columns, path, "ndjson", import_id="p")) == (
        2,
        2,
        0,
        0,
    )
    assert rows(engine, f"SELECT * FROM {database}.{table} ORDER BY inner") == [
        {"obj": '{"b":1}', "inner": 1, "first": "q", "second_x": 5},
        {"obj": '{"b":2}', "inner": 2, "first": None, "second_x": None},
    ]
    bad = [Column("x", "String", jsonpath="$.a[:].b")]
    with pytest.raises(ImportFormatError):
        import_file(engine, database, table, bad, path, "ndjson", import_id="p")


def test_cleanup_staging_drops_leftovers(engine):
    from tody.services.ingest.bulk import INGEST_DATABASE, cleanup_staging

    cleanup_staging(engine, older_than=0)
    engine.execute(f"CREATE TABLE {INGEST_DATABASE}.s_leftover (x UInt8) ENGINE = Null")
    engine.execute(
        f"CREATE MATERIALIZED VIEW {INGEST_DATABASE}.c_leftover ENGINE = Memory AS SELECT x FROM {INGEST_DATABASE}.s_leftover"
    )
    assert cleanup_staging(engine, older_than=3600) == 0
    assert cleanup_staging(engine, older_than=-5) >= 2
    left = engine.execute(f"SELECT count() FROM system.tables WHERE database = '{INGEST_DATABASE}'").data
    assert left.strip() == b"0"


TYPED_COLUMNS = [
    Column("e", "Enum8('a' = 1, 'b''q' = 2)"),
    Column("dt", "DateTime('UTC')"),
    Column("dt64", "DateTime64(3, 'UTC')"),
    Column("dec", "Decimal(18, 4)"),
    Column("u", "UUID"),
    Column("fs", "FixedString(2)"),
    Column("ip", "IPv4"),
    Column("b", "Bool"),
    Column("lcn", "LowCardinality(Nullable(String))"),
    Column("arr", "Array(UInt8)"),
    Column("m", "Map(String, UInt8)"),
]
GOOD_VALUES = {
    "e": "b'q",
    "dt": "2024-01-01 10:00:00",
    "dt64": "2024-01-01 10:00:00.123",
    "dec": "12.5",
    "u": "550e8400-e29b-41d4-a716-446655440000",
    "fs": "ab",
    "ip": "10.0.0.1",
    "b": "true",
    "lcn": "x",
}


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_many_types(engine, database, tmp_path, fmt):
    table = setup(engine, database, TYPED_COLUMNS)
    bad = {"e": "c", "dt": "yesterday", "dt64": "2024-02-30 00:00:00", "dec": "1e", "u": "not-a-uuid"}
    bad |= {"fs": "abc", "ip": "300.1.1.1", "b": "maybe"}
    path = tmp_path / f"t.{fmt}"
    if fmt == "csv":

        def line(values, arr, m):
            return (
                ",".join('"' + values[c.name].replace('"', '""') + '"' for c in TYPED_COLUMNS[:9])
                + f',"{arr}","{m}"'
            )

        text = "\n".join(
            [
                line(GOOD_VALUES, "[1,2]", "{'k':1}"),
                line(bad | {"lcn": ""}, "[1,2]", "{}"),
                line(GOOD_VALUES, "[1,x]", "{}"),
            ]
        )
        path.write_text(text + "\n")
    else:
        path.write_text(
            json.dumps(GOOD_VALUES | {"arr": [1, 2], "m": {"k": 1}})
            + "\n"
            + json.dumps(bad | {"lcn": None, "arr": [1, 2], "m": {}})
            + "\n"
            + json.dumps(GOOD_VALUES | {"arr": [1, "x"], "m": {}})
            + "\n"
        )
    result = import_file(engine, database, table, TYPED_COLUMNS, path, fmt, import_id="t", has_header=False)
    assert accounting(result) == (3, 1, 2, 0)
    (stored,) = rows(engine, f"SELECT * FROM {database}.{table}")
    assert stored["e"] == "b'q" and stored["dec"] == 12.5 and stored["b"] is True and stored["m"] == {"k": 1}
    assert stored["dt64"] == "2024-01-01 10:00:00.123" and stored["arr"] == [1, 2] and stored["fs"] == "ab"
    q = quarantine(engine, database, order="arr")
    by_cols = {tuple(r["c__error_column"]): r for r in q}
    assert ("e", "dt", "dt64", "dec", "u", "fs", "ip", "b") in by_cols
    assert by_cols[("e", "dt", "dt64", "dec", "u", "fs", "ip", "b")]["c__error"][0] == (
        "value 'c' on column 'e' is not Enum8('a' = 1, 'b''q' = 2)"
    )
    assert (
        by_cols[("arr",)]["c__error"] == ["value '[1,x]' on column 'arr' is not Array(UInt8)"]
        if fmt == "csv"
        else ["value '[1,\"x\"]' on column 'arr' is not Array(UInt8)"]
    )
