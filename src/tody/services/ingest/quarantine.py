"""The `<table>_quarantine` companion table, and the SQL that decides whether a value fits its column
and says why not.

Every check here is an SQL expression evaluated by the engine. The import (bulk.py) computes each
column's typed value and an ok flag for every row in the same pass that parses the file; the readable
reasons are computed only for the rows that failed (the quarantine view filters first).

Value rules (one set for every format, so CSV, NDJSON and Parquet agree):
- a value is converted with `accurateCastOrNull` (never `to*OrNull`, which turns bad dates into 1970 or
  1900 silently); Date/Date32 values must also be a valid calendar date (`2024-13-01` is refused);
- a missing value (no field, JSON key absent or null, Parquet null) is NULL in a Nullable column, the
  DEFAULT in a column that has one, and a quarantine reason otherwise;
- CSV only: an empty field is a missing value for every type but String (where it is the empty string);
  in a Nullable column both an empty field and `\\N` are NULL.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from tody.engine.base import Engine, EngineError, quote_identifier, quote_string
from tody.engine.ddl import Column, check_expression, check_type

QUARANTINE_SUFFIX = "_quarantine"
EXTRA_COLUMNS = ("c__error_column", "c__error", "c__import_id", "insertion_date")
MAX_VALUE_CHARS = 200  # a value quoted in a reason is cut here
MAX_LINE_CHARS = 1000  # an unparseable line quoted in a reason is cut here
ROW_INVALID_JSON, ROW_NOT_OBJECT, ROW_FIELD_COUNT = 1, 2, 3  # `__rowerr`: the whole row is unreadable

_SCALAR_FAMILIES = frozenset(
    [f"{s}Int{n}" for s in ("", "U") for n in (8, 16, 32, 64, 128, 256)]
    + ["Float32", "Float64", "BFloat16", "Decimal", "Decimal32", "Decimal64", "Decimal128", "Decimal256"]
    + ["UUID", "Date", "Date32", "DateTime", "DateTime64", "Time", "Time64", "Bool", "Boolean"]
    + ["IPv4", "IPv6", "Enum", "Enum8", "Enum16", "String", "FixedString"]
)


def quarantine_name(table: str) -> str:
    return table + QUARANTINE_SUFFIX


def quarantine_table_sql(database: str, table: str, columns: Sequence[Column]) -> str:
    """CREATE TABLE IF NOT EXISTS for `<table>_quarantine`: the original columns as Nullable(String),
    plus the reasons, the import id and the insertion date; rows are kept 30 days."""
    lines = [f"{quote_identifier(c.name)} Nullable(String)" for c in columns if c.name not in EXTRA_COLUMNS]
    lines += [
        "`c__error_column` Array(String)",
        "`c__error` Array(String)",
        "`c__import_id` Nullable(String)",
        "`insertion_date` DateTime DEFAULT now()",
    ]
    body = ",\n".join("    " + line for line in lines)
    name = f"{quote_identifier(database)}.{quote_identifier(quarantine_name(table))}"
    return (
        f"CREATE TABLE IF NOT EXISTS {name}\n(\n{body}\n)\nENGINE = MergeTree\n"
        "ORDER BY insertion_date\nTTL insertion_date + toIntervalDay(30)"
    )


def ensure_quarantine_table(engine: Engine, database: str, table: str, columns: Sequence[Column]) -> None:
    """Create the quarantine table, and add any column the data source gained since it was created."""
    engine.execute(quarantine_table_sql(database, table, columns))
    name = f"{quote_identifier(database)}.{quote_identifier(quarantine_name(table))}"
    existing = engine.execute(
        "SELECT name FROM system.columns WHERE database = "
        f"{quote_string(database)} AND table = {quote_string(quarantine_name(table))}",
        "TabSeparatedRaw",
    ).data.decode()
    have = set(existing.splitlines())
    missing = [c.name for c in columns if c.name not in have and c.name not in EXTRA_COLUMNS]
    if missing:
        adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {quote_identifier(n)} Nullable(String)" for n in missing)
        engine.execute(f"ALTER TABLE {name} {adds}")


# ---------------------------------------------------------------------------------------------------
# Types


def unwrap(type_text: str) -> tuple[str, bool]:
    """(`T` without LowCardinality/Nullable wrappers, whether it was Nullable)."""
    t, nullable, changed = type_text.strip(), False, True
    while changed:
        changed = False
        for wrapper in ("LowCardinality", "Nullable"):
            if t.startswith(wrapper + "(") and t.endswith(")"):
                nullable = nullable or wrapper == "Nullable"
                t, changed = t[len(wrapper) + 1 : -1].strip(), True
    return t, nullable


def family(type_text: str) -> str:
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", unwrap(type_text)[0])
    return m.group() if m else ""


def is_scalar(type_text: str) -> bool:
    """A type that can sit inside Nullable, so `accurateCastOrNull` can check it value by value."""
    return family(type_text) in _SCALAR_FAMILIES


def is_string_type(type_text: str) -> bool:
    return family(type_text) == "String"


def array_element(type_text: str) -> str | None:
    """`E` of `Array(E)` when E is a scalar type, else None."""
    t, _ = unwrap(type_text)
    if t.startswith("Array(") and t.endswith(")"):
        inner = t[6:-1].strip()
        if is_scalar(inner):
            return inner
    return None


_ENUM_ITEM = re.compile(r"'((?:[^'\\]|\\.|'')*)'\s*(?:=\s*(-?\d+))?")


def enum_items(type_text: str) -> tuple[list[str], list[int]]:
    """Names and numbers of `Enum8('a' = 1, 'b' = 2)`."""
    t = unwrap(type_text)[0]
    inner = t[t.index("(") + 1 : t.rindex(")")] if "(" in t else ""
    names, numbers = [], []
    for m in _ENUM_ITEM.finditer(inner):
        names.append(re.sub(r"\\(.)", r"\1", m.group(1).replace("''", "'")))
        if m.group(2) is not None:
            numbers.append(int(m.group(2)))
    return names, numbers


def input_columns(columns: Sequence[Column]) -> list[Column]:
    """The columns a file provides values for (MATERIALIZED and ALIAS columns are computed)."""
    return [
        c
        for c in columns
        if not (c.default is not None and c.default_kind.upper() in ("MATERIALIZED", "ALIAS"))
    ]


# ---------------------------------------------------------------------------------------------------
# Per-column checks


@dataclass(frozen=True)
class ColumnCheck:
    """SQL for one input column. `src` is an expression over the parsed input: Nullable(String) text for
    CSV and NDJSON (`text=True`), the file's own typed column for Parquet (`text=False`).

    The import stores `raw_sql` (the original value as text, for the quarantine) as `__r<i>` and
    `value_sql` (Nullable typed value) as `__v<i>`; `ok_sql`, `final_sql` and `reason_sql` refer to
    those stored columns."""

    index: int
    column: Column
    src: str
    text: bool = True
    csv: bool = False
    native: bool = False  # the value is parsed natively by the format (errors go to the error file)
    src_container: bool = False  # Parquet: the file's column is an Array/Map/Tuple (cast its text)

    @property
    def r(self) -> str:
        return f"__r{self.index}"

    @property
    def v(self) -> str:
        return f"__v{self.index}"

    @property
    def base(self) -> str:
        return unwrap(check_type(self.column.type, f"type of column {self.column.name!r}"))[0]

    @property
    def nullable(self) -> bool:
        return self.column.nullable

    @property
    def has_default(self) -> bool:
        return self.column.default is not None and self.column.default_kind.upper() == "DEFAULT"

    @property
    def kind(self) -> str:
        if self.native:
            return "native"
        if is_string_type(self.column.type):
            return "string"
        if is_scalar(self.column.type):
            return "scalar"
        if array_element(self.column.type) is not None and self.text:
            return "array"
        return "complex"

    # -- stage expressions (over the parsed input) --

    def raw_sql(self) -> str:
        return self.src if self.text else f"toString({self.src})"

    def absent_sql(self) -> str:
        """True when the row has no value for this column (over the stored raw text)."""
        if self.text and self.csv:
            if self.nullable:
                return f"({self.r} IS NULL OR {self.r} IN ('', '\\\\N'))"
            if self.kind != "string":
                return f"({self.r} IS NULL OR {self.r} = '')"
        return f"({self.r} IS NULL)"

    def _items(self) -> str:
        return f"JSONExtract(ifNull({self.r}, '[]'), 'Array(Nullable(String))')"

    def value_sql(self) -> str:
        kind, base = self.kind, self.base
        if kind == "native":
            return self.src
        if kind == "string":
            cast = self.r
            if family(base) == "FixedString":
                cast = f"accurateCastOrNull({cast}, {quote_string(base)})"
            return f"if({self.absent_sql()}, NULL, {cast})"
        if kind == "scalar":
            source = self.r if (self.text or self.src_container) else self.src
            cast = f"accurateCastOrNull({source}, {quote_string(base)})"
            if family(base).startswith("Enum"):
                # accurateCastOrNull throws on an unknown enum name: cast only known names and numbers
                # (if() evaluates its branch only on the rows that pass).
                names, numbers = enum_items(base)
                known = f"{self.r} IN ({', '.join(quote_string(n) for n in names) or 'NULL'})"
                if numbers:
                    known += f" OR toInt64OrNull({self.r}) IN ({', '.join(map(str, numbers))})"
                cast = f"if({known}, {cast}, NULL)"
            if family(base) in ("Date", "Date32") and (self.text or self.src_container):
                # accurateCastOrNull('2024-13-01', 'Date') is 1970-01-01: check the calendar as DateTime64.
                cast = f"if(accurateCastOrNull({source}, 'DateTime64(0)') IS NULL, NULL, {cast})"
            return f"if({self.absent_sql()}, NULL, {cast})"
        if kind == "array":
            elem = array_element(self.column.type) or "String"
            if is_string_type(elem):
                return self._items()
            return f"arrayMap(x -> accurateCastOrNull(x, {quote_string(unwrap(elem)[0])}), {self._items()})"
        # complex: lenient conversion, no per-value check
        if self.text:
            return f"JSONExtract(ifNull({self.r}, ''), {quote_string(self.column.type)})"
        return f"CAST({self.src}, {quote_string(self.column.type)})"

    def ok_sql(self) -> str:
        kind = self.kind
        if kind in ("native", "complex"):
            return "1"
        if kind == "array":
            elem = array_element(self.column.type) or "String"
            shape = f"({self.r} IS NULL OR startsWith({self.r}, '['))"
            if unwrap(elem)[1]:
                if is_string_type(elem):
                    return shape
                return (
                    f"({shape} AND arrayAll((x, y) -> x IS NULL OR y IS NOT NULL, {self._items()}, {self.v}))"
                )
            return f"({shape} AND arrayAll(y -> y IS NOT NULL, {self.v}))"
        missing_ok = "1" if (self.nullable or self.has_default) else "0"
        return f"if({self.absent_sql()}, {missing_ok}, {self.v} IS NOT NULL)"

    def final_sql(self) -> str:
        """The value written to the data source (rows that passed every check)."""
        kind = self.kind
        if kind == "array":
            elem = array_element(self.column.type) or "String"
            return self.v if unwrap(elem)[1] else f"arrayMap(x -> assumeNotNull(x), {self.v})"
        if kind in ("native", "complex") or self.nullable:
            return self.v
        if self.has_default:
            default = check_expression(self.column.default or "", f"DEFAULT of column {self.column.name!r}")
            return f"ifNull({self.v}, ({default}))"
        return f"assumeNotNull({self.v})"

    def reason_sql(self) -> str:
        """'' when the value is fine, else `value 'abc' on column 'user_id' is not UInt64`."""
        tail = quote_string(f"' on column '{self.column.name}' is not {self.column.type}")
        missing = quote_string(
            f"column '{self.column.name}' has no value, and it is not Nullable and has no DEFAULT"
        )
        value = f"concat('value \\'', leftUTF8({self.r}, {MAX_VALUE_CHARS}), {tail})"
        return f"if({self.ok_sql()}, '', if({self.r} IS NULL, {missing}, {value}))"


# ---------------------------------------------------------------------------------------------------
# The quarantine view's SELECT (evaluated on the bad rows only)


def json_row_reason_sql() -> str:
    excerpt = f"leftUTF8(__line, {MAX_LINE_CHARS})"
    return (
        f"multiIf(__rowerr = {ROW_INVALID_JSON}, concat('the line is not valid JSON: ', {excerpt}), "
        f"__rowerr = {ROW_NOT_OBJECT}, concat('the line is not a JSON object: ', {excerpt}), '')"
    )


def field_count_reason_sql(expected: int, width: int) -> str:
    found = f"if(__nf >= {width}, 'more than {width - 1}', toString(__nf))"
    return f"if(__rowerr = {ROW_FIELD_COUNT}, concat('expected {expected} fields, found ', {found}), '')"


def quarantine_select(
    fmt: str,
    checks: Sequence[ColumnCheck],
    row_reason: str,
    stage: str,
    import_id: str,
    *,
    import_id_sql: str | None = None,
) -> str:
    """Bad rows of the stage → quarantine rows: original values, reasons, failing columns, import id
    (`import_id`, or the expression `import_id_sql` for a view that outlives one import).
    A row-level reason (not JSON, wrong field count) replaces the per-column ones."""
    reasons = "[" + ", ".join(chk.reason_sql() for chk in checks) + "]"
    name_list = "[" + ", ".join(quote_string(chk.column.name) for chk in checks) + "]"
    # A line that is not a JSON object has no column values (JSONExtract would read an array by position).
    unreadable = f"__rowerr IN ({ROW_INVALID_JSON}, {ROW_NOT_OBJECT})"
    values = ", ".join(
        f"if({unreadable}, NULL, {chk.r}) AS {quote_identifier(chk.column.name)}"
        if fmt == "ndjson" and chk.src != "__line"
        else f"{chk.r} AS {quote_identifier(chk.column.name)}"
        for chk in checks
    )
    return (
        f"SELECT {values},\n"
        f"  if(__row_reason != '', [], arrayFilter((n, e) -> e != '', {name_list}, __reasons)) AS c__error_column,\n"
        f"  if(__row_reason != '', [__row_reason], arrayFilter(e -> e != '', __reasons)) AS c__error,\n"
        f"  {import_id_sql or quote_string(import_id)} AS c__import_id\n"
        f"FROM (SELECT *, {row_reason} AS __row_reason, "
        f"if(__row_reason != '', [], {reasons}) AS __reasons FROM {stage} WHERE __ok = 0 AND __empty = 0)"
    )


def summary(
    engine: Engine, database: str, table: str, import_id: str, quarantined: int, received: int
) -> str:
    """`N of M rows went to the quarantine data source X; first error: …`"""
    qname = quarantine_name(table)
    example = ""
    try:
        res = engine.execute(
            f"SELECT c__error FROM {quote_identifier(database)}.{quote_identifier(qname)} "
            f"WHERE insertion_date >= now() - 86400 AND c__import_id = {quote_string(import_id)} "
            "AND notEmpty(c__error) LIMIT 1",
            "JSONCompactEachRow",
        )
        first = orjson.loads(res.data.splitlines()[0])[0] if res.data.strip() else []
        example = f"; first error: {first[0]}" if first else ""
    except (EngineError, ValueError, IndexError):
        pass
    return f"{quarantined} of {received} rows went to the quarantine data source {qname}{example}"


# ---------------------------------------------------------------------------------------------------
# The engine's error file (rows the format itself could not read)


@dataclass(frozen=True)
class RecordedError:
    offset: int  # the engine's row number (1-based; see bulk.py for what it counts)
    reason: str
    raw: str


def read_error_files(directory: Path, prefix: str) -> list[RecordedError]:
    """Rows the engine skipped, from its CSV error file(s): `time, db, table, offset, reason, raw`.

    The engine writes `<path>_new` (then `_new_new`, ...) when the file exists, so every file with the
    prefix is read."""
    out: list[RecordedError] = []
    for path in sorted(directory.glob(prefix + "*")):
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for rec in csv.reader(fh):
                if len(rec) < 6:
                    continue
                try:
                    offset = int(rec[3])
                except ValueError:
                    continue
                out.append(RecordedError(offset=offset, reason=rec[4], raw=rec[5]))
    out.sort(key=lambda e: e.offset)
    return out


_COLUMN_LINE = re.compile(r"\s*Column (\d+),")
_MARKERS = {"<DOUBLE QUOTE>": '"', "<SINGLE QUOTE>": "'", "<TAB>": "\\t", "<LINE FEED>": "\\n"}
_MARKERS |= {"<CARRIAGE RETURN>": "\\r", "<BACKSLASH>": "\\\\", "<EMPTY>": "''"}


def engine_reason(reason: str) -> tuple[int | None, str]:
    """(input position of the failing field or None, the engine's own message on one line)."""
    lines = reason.splitlines()
    for i, line in enumerate(lines):
        at = line.find("ERROR")
        if at < 0:
            continue
        m = _COLUMN_LINE.match(line)
        text = " ".join([line[at + 5 :], *lines[i + 1 :]])
        text = re.sub(r"^[:\s]*(Code: \d+\.\s*)?(DB::Exception:\s*)?", "", text)
        text = re.sub(r"\s*\([A-Z_]+\)\s*\(version [^)]*\)\s*$", "", text)
        for marker, plain in _MARKERS.items():
            text = text.replace(marker, plain)
        return (int(m.group(1)) if m else None), " ".join(text.split())
    return None, " ".join(reason.split())


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _split_record(raw: str, delimiter: str) -> list[str]:
    """The fields of a record the engine could not read (its first line only), split leniently."""
    try:
        return next(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return [raw]


def insert_recorded(
    engine: Engine,
    database: str,
    table: str,
    fmt: str,
    checks: Sequence[ColumnCheck],
    positions: dict[int, str],
    errors: Sequence[RecordedError],
    delimiter: str,
    import_id: str,
) -> None:
    """Quarantine the rows the format could not read, with their values (split from the engine's
    `raw`, in Python: these few rows only) and a reason."""
    type_of = {chk.column.name: chk.column.type for chk in checks}
    rows = []
    for err in errors:
        position, message = engine_reason(err.reason)
        row: dict[str, object] = {"c__import_id": import_id}
        fields = _split_record(err.raw, delimiter) if fmt == "csv" else []
        for k, value in enumerate(fields):
            name = positions.get(k)
            if name is not None:
                row[name] = value
        column = positions.get(position) if position is not None else None
        if column is not None and position is not None and position < len(fields):
            value = cut(fields[position], MAX_VALUE_CHARS)
            row["c__error_column"] = [column]
            row["c__error"] = [f"value '{value}' on column '{column}' is not {type_of.get(column, '?')}"]
        else:
            kind = "CSV" if fmt == "csv" else fmt.upper()
            row["c__error_column"] = []
            row["c__error"] = [f"the line is not valid {kind} ({message}): {cut(err.raw, MAX_LINE_CHARS)}"]
        rows.append(orjson.dumps(row))
    target = f"{quote_identifier(database)}.{quote_identifier(quarantine_name(table))}"
    stream = engine.insert(f"INSERT INTO {target}", "JSONEachRow")
    try:
        stream.write(b"\n".join(rows) + b"\n")
        stream.finish()
    except BaseException:
        stream.cancel()
        raise
