"""The quarantine table, header detection, JSONPaths, schema inference and the engine's error file."""

from __future__ import annotations

import gzip
import json

import pytest

from tody.engine.ddl import Column
from tody.services.ingest.formats import (
    CsvDialect,
    ImportFormatError,
    PathStep,
    detect_csv_header,
    infer_schema,
    parse_jsonpath,
    sanitize_name,
    sniff_file,
    unique_names,
)
from tody.services.ingest.quarantine import (
    engine_reason,
    ensure_quarantine_table,
    quarantine_table_sql,
    read_error_files,
)

COLUMNS = [Column("id", "UInt64"), Column("name", "String"), Column("ts", "DateTime")]


def describe(engine, database, table):
    data = engine.execute(f"DESCRIBE TABLE {database}.{table}", "JSONEachRow").data.decode()
    return {r["name"]: (r["type"], r["default_expression"]) for r in map(json.loads, data.splitlines())}


def test_quarantine_table_shape(engine, database):
    sql = quarantine_table_sql(database, "events", COLUMNS)
    assert sql.startswith(f"CREATE TABLE IF NOT EXISTS `{database}`.`events_quarantine`")
    engine.execute(sql)
    engine.execute(sql)  # idempotent
    cols = describe(engine, database, "events_quarantine")
    assert cols == {
        "id": ("Nullable(String)", ""),
        "name": ("Nullable(String)", ""),
        "ts": ("Nullable(String)", ""),
        "c__error_column": ("Array(String)", ""),
        "c__error": ("Array(String)", ""),
        "c__import_id": ("Nullable(String)", ""),
        "insertion_date": ("DateTime", "now()"),
    }
    create = engine.execute(
        f"SHOW CREATE TABLE {database}.events_quarantine", "TabSeparatedRaw"
    ).data.decode()
    assert "ORDER BY insertion_date" in create
    assert "TTL insertion_date + toIntervalDay(30)" in create


def test_quarantine_table_gains_new_columns(engine, database):
    ensure_quarantine_table(engine, database, "t", COLUMNS[:1])
    ensure_quarantine_table(engine, database, "t", [*COLUMNS, Column("we ird", "Int8")])
    assert set(describe(engine, database, "t_quarantine")) >= {"id", "name", "ts", "we ird"}


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"id,name,ts\n1,a,2024-01-01 00:00:00\n", True),
        (b"\xef\xbb\xbfID,Name,TS\r\n1,a,2024-01-01 00:00:00\r\n", True),
        (b"identifier,label,when\n1,a,2024-01-01 00:00:00\n", True),  # does not fit UInt64/DateTime
        (b"1,a,2024-01-01 00:00:00\n2,b,2024-01-02 00:00:00\n", False),
        (b"1,id,2024-01-01 00:00:00\n", False),
        (b"", False),
        (b"\n\n", False),
    ],
)
def test_detect_csv_header(sample, expected):
    assert detect_csv_header(sample, COLUMNS, CsvDialect()) is expected


def test_detect_csv_header_all_string_columns_needs_names():
    cols = [Column("a", "String"), Column("b", "String")]
    assert detect_csv_header(b"x,y\nz,w\n", cols) is False
    assert detect_csv_header(b"A,b\nz,w\n", cols) is True
    assert detect_csv_header(b"a;b\nz;w\n", cols, CsvDialect(delimiter=";")) is True


def test_parse_jsonpath():
    assert parse_jsonpath("$") == ()
    assert parse_jsonpath("$.a.b") == (PathStep("key", "a"), PathStep("key", "b"))
    assert parse_jsonpath("json:$.arr[:]") == (PathStep("key", "arr"), PathStep("all"))
    assert parse_jsonpath("$['a b'].c[0]") == (
        PathStep("key", "a b"),
        PathStep("key", "c"),
        PathStep("index", index=0),
    )
    for bad in ("a.b", "$.", "$[x]", "$.a[", "$..a"):
        with pytest.raises(ImportFormatError):
            parse_jsonpath(bad)


def test_names():
    assert sanitize_name("User Id") == "User_Id"
    assert sanitize_name("1st") == "_1st"
    assert sanitize_name("ñandú-2") == "_and__2"
    assert sanitize_name("  ", 3) == "column_03"
    assert unique_names(["a", "A", "a", "b"]) == ["a", "A_1", "a_2", "b"]


def test_sniff_detects_gzip_and_bom(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbfa,b\n"))
    sniff = sniff_file(path)
    assert (sniff.gzip, sniff.bom, sniff.head) == (True, True, b"a,b\n")
    path.write_bytes(b"a,b\n")
    assert (sniff_file(path).gzip, sniff_file(path).bom) == (False, False)


def test_infer_schema_csv(engine, tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfUser Id,name,when,score\n1,ana,2024-01-01,1.5\n2,,2024-01-02,\n")
    cols = infer_schema(engine, path, "csv")
    assert [(c.name, c.type) for c in cols] == [
        ("User_Id", "Int64"),
        ("name", "String"),  # an empty CSV field is the empty string in a String column
        ("when", "Date"),
        ("score", "Nullable(Float64)"),
    ]
    path.write_text("1,a\n2,b\n")
    assert [c.name for c in infer_schema(engine, path, "csv")] == ["c1", "c2"]
    path.write_text("1;a\n2;b\n")
    assert len(infer_schema(engine, path, "csv", CsvDialect(delimiter=";"))) == 2


def test_infer_schema_ndjson_flattens_objects(engine, tmp_path):
    path = tmp_path / "x.ndjson"
    lines = [
        {"id": 1, "user": {"name": "a", "geo": {"cc": "ES"}}, "tags": ["x"], "odd key": None, "9lives": True},
        {"id": 2, "user": {"name": "b", "geo": {"cc": "FR"}}, "tags": [], "odd key": "v", "9lives": False},
    ]
    path.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    cols = infer_schema(engine, path, "ndjson")
    assert sorted((c.name, c.type, c.jsonpath) for c in cols) == sorted(
        [
            ("id", "Int64", "$.id"),
            ("user_name", "String", "$.user.name"),
            ("user_geo_cc", "String", "$.user.geo.cc"),
            ("tags", "Array(String)", "$.tags[:]"),
            ("odd_key", "Nullable(String)", "$['odd key']"),
            ("_9lives", "Bool", "$['9lives']"),
        ]
    )
    for col in cols:  # every inferred path parses
        parse_jsonpath(col.jsonpath or "")


def test_infer_schema_parquet(engine, tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(
        engine.execute(
            "SELECT toUInt32(number) AS id, toString(number) AS `s-name`, if(number = 1, NULL, number) AS maybe "
            "FROM numbers(3)",
            "Parquet",
        ).data
    )
    cols = infer_schema(engine, path, "parquet")
    assert [(c.name, c.type, c.jsonpath) for c in cols] == [
        ("id", "UInt32", "$.id"),
        ("s_name", "String", "$['s-name']"),
        ("maybe", "Nullable(UInt64)", "$.maybe"),
    ]


def test_error_files_are_read_in_offset_order_including_new_suffixes(tmp_path):
    (tmp_path / "errors.csv").write_text(
        '"t","db","tb",7,"Row 7: ERROR: x","7,a"\n"t","db","tb",2,"r","2,b"\n'
    )
    (tmp_path / "errors.csv_new").write_text('"t","db","tb",5,"r","multi\nline"\n')
    errors = read_error_files(tmp_path, "errors")
    assert [(e.offset, e.raw) for e in errors] == [(2, "2,b"), (5, "multi\nline"), (7, "7,a")]


def test_engine_reason_text():
    reason = (
        'Row 3:\nColumn 0,   name: c0, type: UInt64, parsed text: "1"\n'
        'Column 1,   name: c1, type: Array(UInt8), parsed text: "<DOUBLE QUOTE>x"ERROR Code: 130. '
        "DB::Exception: Cannot read array from text. (CANNOT_READ_ARRAY_FROM_TEXT) (version 26.9.2.1)"
    )
    assert engine_reason(reason) == (1, "Cannot read array from text.")
    two_lines = "Row 2:\nERROR: There is no delimiter (,).\n It's like a broken quote."
    assert engine_reason(two_lines) == (None, "There is no delimiter (,). It's like a broken quote.")
