"""Bulk imports: exact accounting for every format and bad-row ratio, on ~10k-row generated files."""

from __future__ import annotations

import glob
import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest

from tody.engine.ddl import Column, TableEngine, create_table_sql
from tody.services.ingest.bulk import INGEST_DATABASE, import_file

N = 10_000
COLUMNS = [
    Column("ts", "DateTime"),
    Column("user_id", "UInt64"),
    Column("event", "LowCardinality(String)"),
    Column("value", "Float64"),
    Column("note", "Nullable(String)"),
]
BAD_KINDS = ("user_id", "ts", "value", "structure")


def _rows(n: int, bad_every: int | None):
    """(row dict, bad kind or None) for n rows; every `bad_every`-th row is bad (cycling through kinds)."""
    out = []
    for i in range(n):
        row = {
            "ts": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00",
            "user_id": i + 1,
            "event": ("click", "view", "buy")[i % 3],
            "value": round(i * 0.25, 2),
            "note": None if i % 5 == 0 else f"note {i}, with a comma",
        }
        kind = None
        if bad_every and i % bad_every == 0:
            kind = BAD_KINDS[(i // bad_every) % len(BAD_KINDS)]
            if kind == "user_id":
                row["user_id"] = "abc"
            elif kind == "ts":
                row["ts"] = "2024-13-45 99:00:00"
            elif kind == "value":
                row["value"] = "1.2.3"
        out.append((row, kind))
    return out


def _csv_field(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(path: Path, rows, header: bool = True) -> None:
    lines = [",".join(c.name for c in COLUMNS)] if header else []
    for row, kind in rows:
        fields = [_csv_field(row[c.name]) for c in COLUMNS]
        if kind == "structure":
            fields.append("surplus")  # one field too many
        lines.append(",".join(fields))
    path.write_text("\n".join(lines) + "\n")


def write_ndjson(path: Path, rows) -> None:
    lines = []
    for row, kind in rows:
        lines.append('{"ts": "broken' if kind == "structure" else json.dumps(row))
    path.write_text("\n".join(lines) + "\n")


def write_parquet(engine, path: Path, rows) -> None:
    """Parquet with text columns, so that bad values can be stored in them."""
    tmp = path.with_suffix(".src.ndjson")
    with open(tmp, "w") as fh:
        for row, kind in rows:
            rec = {k: (None if v is None else str(v)) for k, v in row.items()}
            if kind == "structure":
                rec["user_id"] = None  # a null in a non-nullable column
            fh.write(json.dumps(rec) + "\n")
    structure = "ts String, user_id Nullable(String), event String, value String, note Nullable(String)"
    data = engine.execute(f"SELECT * FROM file('{tmp}', JSONEachRow, '{structure}')", "Parquet").data
    path.write_bytes(data)
    tmp.unlink()


def make_table(engine, database: str, name: str = "events", columns=COLUMNS) -> str:
    engine.execute(create_table_sql(database, name, columns, TableEngine(sorting_key="tuple()")))
    return name


def count(engine, sql: str) -> int:
    return int(engine.execute(sql).data.decode().strip() or 0)


def staging_leftovers(engine) -> int:
    return count(engine, f"SELECT count() FROM system.tables WHERE database = '{INGEST_DATABASE}'")


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path, monkeypatch):
    """Imports make their work directories here, so other test processes' imports are not counted."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))


def import_leftovers() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "tody-import-*"))


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
@pytest.mark.parametrize("bad_every", [None, 100, 2, 1], ids=["0pct", "1pct", "50pct", "100pct"])
def test_exact_accounting(engine, database, tmp_path, fmt, bad_every):
    rows = _rows(N, bad_every)
    expected_bad = sum(1 for _, kind in rows if kind)
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        write_csv(path, rows)
    elif fmt == "ndjson":
        write_ndjson(path, rows)
    else:
        write_parquet(engine, path, rows)
    table = make_table(engine, database)
    before = import_leftovers()

    result = import_file(engine, database, table, COLUMNS, path, fmt, import_id="imp-1")

    assert result.rows_received == N
    assert result.rows_quarantined == expected_bad
    assert result.rows_stored == N - expected_bad
    assert result.rows_received == result.rows_stored + result.rows_quarantined
    assert result.empty_lines == 0
    assert result.bytes_received == path.stat().st_size
    assert count(engine, f"SELECT count() FROM {database}.{table}") == N - expected_bad
    q = f"{database}.{table}_quarantine"
    assert count(engine, f"SELECT count() FROM {q} WHERE c__import_id = 'imp-1'") == expected_bad
    # the right rows were stored: user ids of the good rows
    good_sum = sum(row["user_id"] for row, kind in rows if not kind)
    assert count(engine, f"SELECT sum(user_id) FROM {database}.{table}") == good_sum
    # every quarantined row has a reason
    assert count(engine, f"SELECT countIf(empty(c__error)) FROM {q}") == 0
    if expected_bad:
        assert result.error and f"{expected_bad} of {N} rows" in result.error
    else:
        assert result.error is None
    assert staging_leftovers(engine) == 0
    assert import_leftovers() == before


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_every_method_gives_the_same_rows(engine, database, tmp_path, fmt):
    rows = _rows(2000, 7)
    path = tmp_path / f"data.{fmt}"
    (write_csv if fmt == "csv" else write_ndjson)(path, rows)
    expected_bad = sum(1 for _, kind in rows if kind)
    for method in ("file", "stream", "infile"):
        table = make_table(engine, database, f"t_{method}")
        result = import_file(engine, database, table, COLUMNS, path, fmt, import_id=method, method=method)
        assert (result.rows_received, result.rows_quarantined) == (2000, expected_bad)
        assert count(engine, f"SELECT count() FROM {database}.{table}") == 2000 - expected_bad
    for other in ("stream", "infile"):
        diff = f"SELECT * FROM {database}.t_file EXCEPT SELECT * FROM {database}.t_{other}"
        assert count(engine, f"SELECT count() FROM ({diff})") == 0


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_gzip_is_detected_and_read_by_the_engine(engine, database, tmp_path, fmt):
    rows = _rows(3000, 100)
    plain = tmp_path / f"plain.{fmt}"
    (write_csv if fmt == "csv" else write_ndjson)(plain, rows)
    packed = tmp_path / f"data.{fmt}"  # no .gz suffix: detection is by magic number
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    table = make_table(engine, database)
    result = import_file(engine, database, table, COLUMNS, packed, fmt, import_id="gz")
    assert (result.rows_received, result.rows_stored, result.rows_quarantined) == (3000, 2970, 30)
    assert result.bytes_received == packed.stat().st_size


def test_parquet_gzip(engine, database, tmp_path):
    rows = _rows(500, None)
    plain = tmp_path / "plain.parquet"
    write_parquet(engine, plain, rows)
    packed = tmp_path / "data.parquet"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    table = make_table(engine, database)
    result = import_file(engine, database, table, COLUMNS, packed, "parquet", import_id="gz")
    assert (result.rows_received, result.rows_stored) == (500, 500)


def test_temporary_files_and_staging_are_removed_when_the_import_fails(engine, database, tmp_path):
    columns = [Column("a", "UInt64"), Column("b", "UInt64", default="no_such_column + 1")]
    engine.execute(
        create_table_sql(
            database, "broken", [columns[0], Column("b", "UInt64")], TableEngine(sorting_key="a")
        )
    )
    path = tmp_path / "data.csv"
    path.write_text("1,\n2,3\n")
    before = import_leftovers()
    result = import_file(engine, database, "broken", columns, path, "csv", import_id="fail")
    assert result.error and "import failed" in result.error
    assert result.rows_received == result.rows_stored + result.rows_quarantined
    assert staging_leftovers(engine) == 0
    assert import_leftovers() == before
