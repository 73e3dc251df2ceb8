"""Bulk imports (CSV, NDJSON, Parquet files) into a data source, with an exact quarantine.

How an import runs (rows are never parsed in Python):

1. The engine reads the spool file in a shape that never fails on a value (gzip is detected by its
   magic number and decompressed by the engine):
   - CSV: every field as Nullable(String), `input_format_csv_allow_variable_number_of_columns=1` plus
     FIELD_SLACK spare columns (a wrong field count is data: `expected 5 fields, found 7`),
     `format_csv_null_representation` set to a marker nobody writes (so NULL means "no such field"),
     `input_format_csv_empty_as_default=0`, `format_csv_allow_single_quotes=0`, the dialect's delimiter;
     a header row is skipped with `CSVWithNames` + `input_format_with_names_use_header=0` and its names
     map fields to columns. Array/Map/Tuple columns are parsed natively (their errors are row errors).
   - NDJSON: `LineAsString` (one row per line, whatever it holds), then one
     `JSONExtract(line, 'Tuple(...)')` per line that maps every JSONPath at once (each value as its
     JSON text), `isValidJSON` for the lines that are not JSON.
   - Parquet: the file's own columns, matched by JSONPath or name.
2. In the same SELECT, every column gets its typed value (`accurateCastOrNull`) and an ok flag
   (quarantine.py), and each row an `__ok` flag.
3. The rows go into a private Null table with three materialized views: good rows to the data source,
   bad rows to `<table>_quarantine` with their reasons (computed only for those rows), and per-block
   counts to a small Memory table. One pass, one parse.
4. Rows the format itself cannot read (a CSV record with broken quoting) are skipped by the engine
   (`input_format_allow_errors_ratio=1`) and listed in a per-import `input_format_record_errors_file_path`
   in a private temporary directory; they go to the quarantine from that file, which is then deleted.

The engine's error file counts rows, not lines: its offset is the 1-based row number, where a quoted CSV
record spanning several lines is one row and an empty line is a row; after a broken record the reader
resumes at the next line break, and `raw` holds the first line of the record only. So the quarantine
takes the values of such a record from `raw`, and no offset has to be mapped back to the file.

A UTF-8 BOM is dropped: from the header line (skipped), by the JSON line expression, or (CSV without a
header) by reading a copy of the file without its first three bytes.

Accounting: rows_received = rows stored + rows quarantined, always; empty lines (blank or whitespace
only) are counted apart and never quarantined; a CSV header is neither.
"""

from __future__ import annotations

import gzip
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tody.engine.base import Engine, EngineError, quote_identifier, quote_string
from tody.engine.ddl import Column, check_type
from tody.services.ingest.formats import (
    BOM,
    FORMATS,
    CsvDialect,
    ImportFormatError,
    PathStep,
    Sniff,
    column_path,
    detect_csv_header,
    file_source,
    header_fields,
    sanitize_name,
    sniff_file,
)
from tody.services.ingest.quarantine import (
    ROW_FIELD_COUNT,
    ROW_INVALID_JSON,
    ROW_NOT_OBJECT,
    ColumnCheck,
    RecordedError,
    ensure_quarantine_table,
    field_count_reason_sql,
    input_columns,
    insert_recorded,
    is_scalar,
    json_row_reason_sql,
    quarantine_name,
    quarantine_select,
    read_error_files,
    summary,
)

INGEST_DATABASE = "tody_ingest"
FIELD_SLACK = 8  # spare CSV columns: "found N fields" is exact up to expected + FIELD_SLACK - 1
NULL_MARKER = "\x01tody\x02null\x03"  # CSV null representation nobody writes: NULL then means "no field"
STREAM_CHUNK = 4 * 1024 * 1024


@dataclass
class ImportResult:
    rows_received: int  # data rows in the input (excluding header and empty lines)
    rows_stored: int
    rows_quarantined: int  # rows_received == rows_stored + rows_quarantined, always
    empty_lines: int
    bytes_received: int
    error: str | None  # a readable summary when rows were quarantined or the import failed
    elapsed: float
    failed: bool = False  # the engine stopped the import (rows_stored may still be > 0: a partial import)


@dataclass
class Plan:
    """How one import reads its file: the source, the per-row expressions and the checks."""

    fmt: str
    source_columns: str  # structure for input() when streaming; "" for Parquet
    engine_format: str
    prelude: list[tuple[str, str]]  # (alias, expression) evaluated before the columns
    empty_sql: str
    rowerr_sql: str
    checks: list[ColumnCheck]
    settings: dict[str, object]
    expected_fields: int = 0
    field_names: dict[int, str] | None = None  # CSV: input position → column name (for error-file rows)
    skip_bytes: int = 0  # a leading BOM the engine must not see (CSV without a header)


_ingest_db_ready: set[int] = set()
_ingest_db_lock = threading.Lock()


def ensure_ingest_database(engine: Engine) -> None:
    key = id(engine)
    if key in _ingest_db_ready:
        return
    with _ingest_db_lock:
        engine.execute(f"CREATE DATABASE IF NOT EXISTS {INGEST_DATABASE} ENGINE = Atomic")
        _ingest_db_ready.add(key)


def cleanup_staging(engine: Engine, older_than: float = 6 * 3600) -> int:
    """Drop staging tables and views left behind by a crash (older than `older_than` seconds)."""
    ensure_ingest_database(engine)
    res = engine.execute(
        f"SELECT name FROM system.tables WHERE database = {quote_string(INGEST_DATABASE)} "
        f"AND metadata_modification_time < now() - {int(older_than)} ORDER BY engine = 'MaterializedView' DESC",
        "TabSeparatedRaw",
    )
    names = res.data.decode().split()
    for name in names:
        engine.execute(f"DROP TABLE IF EXISTS {INGEST_DATABASE}.{quote_identifier(name)} SYNC")
    return len(names)


# ---------------------------------------------------------------------------------------------------
# Plans per format


def _csv_plan(cols: list[Column], sniff: Sniff, dialect: CsvDialect, has_header: bool | None) -> Plan:
    if has_header is None:
        has_header = detect_csv_header(sniff.head, cols, dialect)
    by_position: dict[int, int] = {}  # input position → index in cols
    expected = len(cols)
    if has_header:
        fields = [f.strip() for f in header_fields(sniff.head, dialect)]
        lookup = {c.name.lower(): j for j, c in enumerate(cols)}
        for k, name in enumerate(fields):
            j = lookup.get(name.lower(), lookup.get(sanitize_name(name, k).lower()))
            if j is not None and j not in by_position.values():
                by_position[k] = j
        if by_position:
            expected = len(fields)
        else:  # a header whose names are not the columns': map by position
            by_position = {j: j for j in range(len(cols))}
    else:
        by_position = {j: j for j in range(len(cols))}
    width = max(expected, max(by_position, default=0) + 1) + FIELD_SLACK
    src_of = {j: k for k, j in by_position.items()}
    native = {j for j, c in enumerate(cols) if not is_scalar(c.type)}
    structure = []
    for k in range(width):
        j = by_position.get(k)
        if j is not None and j in native:
            structure.append(f"c{k} {check_type(cols[j].type)}")
        else:
            structure.append(f"c{k} Nullable(String)")
    nullable_positions = [k for k in range(width) if by_position.get(k) not in native]
    native_positions = [k for k in range(width) if by_position.get(k) in native]
    empty = " AND ".join(f"c{k} IS NULL" for k in nullable_positions) or "0"
    present = " + ".join(f"(c{k} IS NOT NULL)" for k in nullable_positions) or "0"
    nf = f"({present} + if(__empty, 0, {len(native_positions)}))"
    checks = [
        ColumnCheck(
            index=j,
            column=c,
            src=f"c{src_of[j]}" if j in src_of else "CAST(NULL, 'Nullable(String)')",
            text=True,
            csv=True,
            native=j in native and j in src_of,
        )
        for j, c in enumerate(cols)
    ]
    settings: dict[str, object] = {
        **dialect.engine_settings(),
        "input_format_csv_allow_variable_number_of_columns": 1,
        "input_format_csv_empty_as_default": 0,
        "input_format_csv_detect_header": 0,
        "input_format_csv_skip_trailing_empty_lines": 0,
        "format_csv_null_representation": NULL_MARKER,
        "format_csv_allow_single_quotes": 0,
    }
    if has_header:
        settings["input_format_with_names_use_header"] = 0
    return Plan(
        fmt="csv",
        source_columns=", ".join(structure),
        engine_format="CSVWithNames" if has_header else "CSV",
        prelude=[("__empty", empty), ("__nf", nf)],
        empty_sql="__empty",
        rowerr_sql=f"if(__empty = 0 AND __nf != {expected}, {ROW_FIELD_COUNT}, 0)",
        checks=checks,
        settings=settings,
        expected_fields=expected,
        field_names={k: cols[j].name for k, j in by_position.items()},
        skip_bytes=len(BOM) if sniff.bom and not has_header else 0,
    )


def _json_tree(paths: dict[int, tuple[PathStep, ...]]) -> tuple[str, dict[int, str]]:
    """One `Tuple(...)` type for JSONExtract that holds every simple key path, and the expression of each
    column over it (`__t`). Paths the tuple cannot express are extracted on their own."""
    tree: dict = {}
    exprs: dict[int, str] = {}
    leaves: dict[tuple[str, ...], list[int]] = {}
    for j, steps in paths.items():
        keys = tuple(s.key for s in steps if s.kind == "key")
        if steps and all(s.kind == "key" for s in steps):
            leaves.setdefault(keys, []).append(j)
    interior = {keys[:i] for keys in leaves for i in range(1, len(keys))}
    for keys, js in leaves.items():
        if keys in interior:  # both a value and an object with wanted keys: extract it apart
            continue
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = None
        access = "__t"
        for key in keys:
            access = f"tupleElement({access}, {quote_string(key)})"
        for j in js:
            exprs[j] = access

    def render(node: dict) -> str:
        parts = []
        for key, child in node.items():
            sub = "Nullable(String)" if child is None else render(child)
            parts.append(f"{quote_identifier(key)} {sub}")
        return f"Tuple({', '.join(parts)})"

    return (render(tree) if tree else ""), exprs


def _json_path_expr(steps: tuple[PathStep, ...]) -> str:
    """A column's raw JSON text for a path the shared tuple does not cover."""
    if not steps:
        return "__line"
    if steps[-1].kind == "all":
        steps = steps[:-1]
    args = []
    for step in steps:
        if step.kind == "key":
            args.append(quote_string(step.key))
        elif step.kind == "index":
            args.append(str(step.index + 1))
        else:
            raise ImportFormatError("a JSONPath may use [:] only at its end")
    return f"JSONExtract(__line, {', '.join(args)}, 'Nullable(String)')" if args else "__line"


def ndjson_plan(cols: list[Column], sniff: Sniff) -> Plan:
    paths = {}
    for j, c in enumerate(cols):
        steps = column_path(c)
        if steps and steps[-1].kind == "all":
            steps = steps[:-1]
        if any(s.kind == "all" for s in steps):
            raise ImportFormatError(f"column {c.name!r}: JSONPath {c.jsonpath!r} may use [:] only at its end")
        paths[j] = steps
    tuple_type, exprs = _json_tree({j: s for j, s in paths.items() if s})
    line = "if(startsWith(line, '\\xEF\\xBB\\xBF'), substring(line, 4), line)" if sniff.bom else "line"
    prelude = [("__line", line)]
    if tuple_type:
        prelude.append(("__t", f"JSONExtract(__line, {quote_string(tuple_type)})"))
    prelude.append(("__empty", "trimBoth(__line, ' \\t\\r') = ''"))
    checks = [
        ColumnCheck(index=j, column=c, src=exprs.get(j) or _json_path_expr(paths[j]), text=True)
        for j, c in enumerate(cols)
    ]
    # JSONExtract yields values only from a whole valid document, so a line that starts like an object
    # and gave any value is valid JSON: isValidJSON (a second parse) runs only on the other lines.
    parsed = " OR ".join(f"{expr} IS NOT NULL" for expr in dict.fromkeys(exprs.values())) or "0"
    rowerr = (
        f"multiIf(__empty, 0, NOT startsWith(trimLeft(__line, ' \\t\\r'), '{{'), "
        f"if(isValidJSON(__line), {ROW_NOT_OBJECT}, {ROW_INVALID_JSON}), {parsed}, 0, "
        f"NOT isValidJSON(__line), {ROW_INVALID_JSON}, 0)"
    )
    return Plan(
        fmt="ndjson",
        source_columns="line String",
        engine_format="LineAsString",
        prelude=prelude,
        empty_sql="__empty",
        rowerr_sql=rowerr,
        checks=checks,
        settings={},
    )


def _parquet_plan(engine: Engine, cols: list[Column], source: str) -> Plan:
    try:
        res = engine.execute(f"DESCRIBE TABLE {source}", "TabSeparatedRaw")
    except EngineError as exc:
        raise ImportFormatError(f"the file is not a readable Parquet file: {_clean(exc.message)}") from None
    found: dict[str, str] = {}
    for line in res.data.decode().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            found[parts[0]] = parts[1]
    lower = {n.lower(): n for n in found}
    checks = []
    for j, c in enumerate(cols):
        steps = column_path(c)
        src, container = "CAST(NULL, 'Nullable(String)')", False
        if steps and all(s.kind in ("key", "all") for s in steps) and steps[0].kind == "key":
            top = steps[0].key if steps[0].key in found else lower.get(steps[0].key.lower())
            if top is not None:
                src = quote_identifier(top)
                for step in steps[1:]:
                    if step.kind == "key":
                        src = f"tupleElement({src}, {quote_string(step.key)})"
                container = not is_scalar(found[top]) and len(steps) == 1
        checks.append(ColumnCheck(index=j, column=c, src=src, text=False, src_container=container))
    return Plan(
        fmt="parquet",
        source_columns="",
        engine_format="Parquet",
        prelude=[],
        empty_sql="0",
        rowerr_sql="0",
        checks=checks,
        settings={"input_format_parquet_allow_missing_columns": 1},
    )


# ---------------------------------------------------------------------------------------------------
# SQL


def stage_sql(plan: Plan, from_sql: str, carry: Sequence[tuple[str, str]] = ()) -> str:
    """The stage rows of `from_sql`; `carry` adds (alias, expression) columns first, as they are."""
    items = [f"{expr} AS {alias}" for alias, expr in (*carry, *plan.prelude)]
    if plan.empty_sql != "__empty":
        items.append(f"{plan.empty_sql} AS __empty")
    items.append(f"{plan.rowerr_sql} AS __rowerr")
    for chk in plan.checks:
        items.append(f"{chk.raw_sql()} AS {chk.r}")
        items.append(f"{chk.value_sql()} AS {chk.v}")
    oks = " AND ".join(f"({chk.ok_sql()})" for chk in plan.checks) or "1"
    items.append(f"(__empty = 0 AND __rowerr = 0 AND {oks}) AS __ok")
    # Raw values are needed for quarantined rows only: NULL them on good rows (smaller blocks).
    keep = [alias for alias, _ in carry] + ["__empty", "__rowerr", "__ok"]
    keep += ["if(__ok, '', __line) AS __line"] if plan.fmt == "ndjson" else []
    keep += ["__nf"] if plan.fmt == "csv" else []
    for chk in plan.checks:
        keep += [f"if(__ok, NULL, {chk.r}) AS {chk.r}", chk.v]
    inner = ",\n    ".join(items)
    return f"SELECT {', '.join(keep)} FROM (SELECT\n    {inner}\nFROM {from_sql})"


def row_reason_sql(plan: Plan) -> str:
    if plan.fmt == "ndjson":
        return json_row_reason_sql()
    if plan.fmt == "csv":
        return field_count_reason_sql(plan.expected_fields, plan.expected_fields + FIELD_SLACK)
    return "''"


def good_sql(plan: Plan, stage: str) -> str:
    values = ", ".join(f"{chk.final_sql()} AS {quote_identifier(chk.column.name)}" for chk in plan.checks)
    return f"SELECT {values} FROM {stage} WHERE __ok"


# ---------------------------------------------------------------------------------------------------
# The import


def import_file(
    engine: Engine,
    database: str,
    table: str,
    columns: Sequence[Column],
    path: Path,
    fmt: str,
    *,
    import_id: str,
    csv_dialect: CsvDialect | None = None,
    has_header: bool | None = None,
    method: str = "auto",
) -> ImportResult:
    """Import a spool file (plain or gzip, detected by its magic number) into `database.table`.

    `method`: "file" (`INSERT … SELECT … FROM file()`: the engine reads the file, parallel parsing),
    "infile" (`INSERT … FROM INFILE` into a raw Null table, then a view), "stream" (bytes sent
    through `engine.insert`, for an engine that cannot see the file) or "auto" (file on chDB).
    Raises ImportFormatError for a bad request (format, dialect, JSONPath, unreadable Parquet); an
    engine failure during the import is returned in `error` with the counts so far."""
    started = time.monotonic()
    path = Path(path)
    if fmt not in FORMATS:
        raise ImportFormatError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    cols = input_columns(columns)
    if not cols:
        raise ImportFormatError("the data source has no column a file can fill")
    dialect = (csv_dialect or CsvDialect()).check()
    sniff = sniff_file(path)
    if method == "auto":
        method = "file" if engine.name == "chdb" else "stream"
    if method not in ("file", "stream", "infile"):
        raise ValueError(f"unknown import method {method!r}")
    if fmt == "parquet":
        # Parquet needs random access (its footer): the engine reads the file itself.
        if engine.name != "chdb":
            raise ImportFormatError("Parquet files can be imported with the embedded engine only")
        method = "file"

    ensure_quarantine_table(engine, database, table, columns)
    ensure_ingest_database(engine)
    work = Path(tempfile.mkdtemp(prefix="tody-import-"))
    tag = uuid.uuid4().hex
    names = {
        k: f"{INGEST_DATABASE}.{quote_identifier(k + '_' + tag)}" for k in ("r", "p", "s", "g", "b", "n", "c")
    }
    errors_path = work / "errors.csv"
    created: list[str] = []
    counts = (0, 0, 0)
    recorded: list[RecordedError] = []
    failure: str | None = None
    try:
        source_path = path
        if fmt == "csv":
            plan = _csv_plan(cols, sniff, dialect, has_header)
            if plan.skip_bytes and method in ("file", "infile"):
                source_path = _copy_without_bom(path, sniff, work / "data.csv")
        elif fmt == "ndjson":
            plan = ndjson_plan(cols, sniff)
        else:
            plan = _parquet_plan(engine, cols, file_source(path, "Parquet", None, sniff.gzip))
        compressed = sniff.gzip and source_path == path
        if method == "file":
            from_sql = file_source(source_path, plan.engine_format, plan.source_columns or None, compressed)
        else:
            from_sql = names["r"]  # streamed rows land in a raw Null table; a view computes the stage
        stage_select = stage_sql(plan, from_sql)
        # Values are cast in if() branches that must run on the passing rows only (see quarantine.py).
        settings = {**plan.settings, "short_circuit_function_evaluation": "enable"}
        if engine.name == "chdb":
            # Unreadable records (CSV with broken quotes) are skipped and listed in a file of our own.
            settings["input_format_allow_errors_ratio"] = 1
            settings["input_format_allow_errors_num"] = 0
            settings["input_format_record_errors_file_path"] = str(errors_path)
        # else: a remote server would write that file on its own disk, so such a record fails the import
        # (reported in `error`) instead of being dropped without a trace.
        # The stage's columns come from the same SELECT over file() (input() exists only inside INSERT).
        shape = stage_sql(
            plan, file_source(source_path, plan.engine_format, plan.source_columns or None, compressed)
        )
        try:
            _create_stage(engine, names, plan, shape, database, table, import_id, settings, created)
            if method == "file":
                engine.execute(f"INSERT INTO {names['s']} {stage_select}", settings=settings)
            else:
                created.append(names["r"])
                engine.execute(f"CREATE TABLE {names['r']} ({plan.source_columns}) ENGINE = Null")
                created.append(names["p"])
                engine.execute(f"CREATE MATERIALIZED VIEW {names['p']} TO {names['s']} AS {stage_select}")
                if method == "infile":
                    clause = ", ".join(f"{k} = {_setting(v)}" for k, v in settings.items())
                    comp = " COMPRESSION 'gzip'" if compressed else ""
                    engine.execute(
                        f"INSERT INTO {names['r']} FROM INFILE {quote_string(str(source_path))}{comp} "
                        f"SETTINGS {clause} FORMAT {plan.engine_format}"
                    )
                else:
                    _stream(engine, f"INSERT INTO {names['r']}", plan, path, sniff, settings)
        except EngineError as exc:
            failure = f"the import failed: {_clean(exc.message)}"
        if names["n"] in created:
            try:
                counts = _read_counts(engine, names["n"])
            except EngineError:
                pass
        recorded = read_error_files(work, "errors")
    finally:
        for name in reversed(created):
            try:
                engine.execute(f"DROP TABLE IF EXISTS {name} SYNC")
            except EngineError:
                pass
        shutil.rmtree(work, ignore_errors=True)

    total, empty, good = counts
    empty_recorded = [e for e in recorded if not e.raw.strip()]
    bad_recorded = [e for e in recorded if e.raw.strip()]
    if bad_recorded:
        fields = plan.field_names or {}
        insert_recorded(
            engine, database, table, plan.fmt, plan.checks, fields, bad_recorded, dialect.delimiter, import_id
        )
    received = total - empty + len(bad_recorded)
    quarantined = received - good
    result = ImportResult(
        rows_received=received,
        rows_stored=good,
        rows_quarantined=quarantined,
        empty_lines=empty + len(empty_recorded),
        bytes_received=sniff.size,
        error=failure,
        elapsed=0.0,
        failed=failure is not None,
    )
    if quarantined and failure is None:
        result.error = summary(engine, database, table, import_id, quarantined, received)
    result.elapsed = time.monotonic() - started
    return result


def _create_stage(engine, names, plan, stage_select, database, table, import_id, settings, created) -> None:
    target = f"{quote_identifier(database)}.{quote_identifier(table)}"
    quarantine = f"{quote_identifier(database)}.{quote_identifier(quarantine_name(table))}"
    ddl_settings = {k: v for k, v in settings.items() if not k.startswith("input_format_record_errors")}
    created.append(names["s"])
    engine.execute(f"CREATE TABLE {names['s']} ENGINE = Null EMPTY AS {stage_select}", settings=ddl_settings)
    created.append(names["n"])
    engine.execute(f"CREATE TABLE {names['n']} (total UInt64, empty UInt64, good UInt64) ENGINE = Memory")
    created.append(names["c"])
    engine.execute(
        f"CREATE MATERIALIZED VIEW {names['c']} TO {names['n']} AS SELECT count() AS total, "
        f"countIf(__empty) AS empty, countIf(__ok) AS good FROM {names['s']}"
    )
    created.append(names["g"])
    engine.execute(f"CREATE MATERIALIZED VIEW {names['g']} TO {target} AS {good_sql(plan, names['s'])}")
    created.append(names["b"])
    engine.execute(
        f"CREATE MATERIALIZED VIEW {names['b']} TO {quarantine} AS "
        f"{quarantine_select(plan.fmt, plan.checks, row_reason_sql(plan), names['s'], import_id)}"
    )


def _setting(value: object) -> str:
    return quote_string(value) if isinstance(value, str) else str(value)


def _clean(message: str) -> str:
    """An engine message without the spool file's path."""
    return re.sub(r"\s*\(in file/uri [^)]*\)", "", message).strip().rstrip(":")


def _read_counts(engine: Engine, counts_table: str) -> tuple[int, int, int]:
    res = engine.execute(f"SELECT sum(total), sum(empty), sum(good) FROM {counts_table}", "TabSeparated")
    parts = res.data.decode().split()
    return int(parts[0]), int(parts[1]), int(parts[2])


def _open_content(path: Path, sniff: Sniff):
    return gzip.open(path, "rb") if sniff.gzip else open(path, "rb")


def _copy_without_bom(path: Path, sniff: Sniff, dest: Path) -> Path:
    """A copy of the (decompressed) content without its leading BOM: for a CSV file without a header,
    whose first field would otherwise start with it."""
    with _open_content(path, sniff) as src, open(dest, "wb") as out:
        src.read(len(BOM))
        shutil.copyfileobj(src, out, STREAM_CHUNK)
    return dest


def _stream(engine: Engine, insert_sql: str, plan: Plan, path: Path, sniff: Sniff, settings: dict) -> None:
    stream = engine.insert(insert_sql, plan.engine_format, settings=settings)
    try:
        with _open_content(path, sniff) as fh:
            if sniff.bom:
                fh.read(len(BOM))
            while chunk := fh.read(STREAM_CHUNK):
                stream.write(chunk)
        stream.finish()
    except BaseException:
        stream.cancel()
        raise
