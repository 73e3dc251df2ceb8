"""Input formats for bulk imports: sniffing a spool file, CSV dialects and headers, JSONPaths, and schema
inference (mode=create) with the engine's own inference.

Nothing here reads more than a small sample of a file in Python; rows are parsed by the engine.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tody.datafiles.schema import render_schema
from tody.engine.base import Engine, quote_string
from tody.engine.ddl import Column

FORMATS = ("csv", "ndjson", "parquet")
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
SAMPLE_BYTES = 64 * 1024


class ImportFormatError(ValueError):
    """The request cannot be imported as given (unknown format, bad dialect, unreadable file)."""


@dataclass
class CsvDialect:
    delimiter: str = ","
    new_line: str | None = None
    escapechar: str | None = None

    def check(self) -> CsvDialect:
        if len(self.delimiter) != 1 or self.delimiter in "\r\n\"'":
            raise ImportFormatError(
                f"dialect_delimiter must be one character other than a quote or a line break, "
                f"got {self.delimiter!r}"
            )
        if self.new_line not in (None, "", "\n", "\r\n", "\r"):
            raise ImportFormatError(f"dialect_new_line must be \\n, \\r\\n or \\r, got {self.new_line!r}")
        if self.escapechar not in (None, "", '"'):
            raise ImportFormatError(
                f'dialect_escapechar {self.escapechar!r} is not supported: CSV fields are quoted with " '
                'and a quote inside a quoted field is written twice ("")'
            )
        return self

    def engine_settings(self) -> dict[str, object]:
        settings: dict[str, object] = {"format_csv_delimiter": self.delimiter}
        if self.new_line == "\r":
            settings["input_format_csv_allow_cr_end_of_line"] = 1
        return settings


@dataclass(frozen=True)
class Sniff:
    """What the first bytes of a spool file say about it."""

    gzip: bool
    bom: bool
    head: bytes  # up to SAMPLE_BYTES of the (decompressed) content, BOM removed
    size: int  # bytes on disk


def sniff_file(path: Path) -> Sniff:
    """Detect gzip (by its magic number) and a UTF-8 BOM, and keep a sample of the content."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(SAMPLE_BYTES)
        except (OSError, EOFError) as exc:
            raise ImportFormatError(f"the file looks gzip-compressed but cannot be read: {exc}") from None
        compressed = True
    else:
        with open(path, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
        compressed = False
    bom = head.startswith(BOM)
    return Sniff(gzip=compressed, bom=bom, head=head[3:] if bom else head, size=size)


# ---------------------------------------------------------------------------------------------------
# Names


_NAME_BAD = re.compile(r"[^A-Za-z0-9_]")


def sanitize_name(name: str, index: int = 0) -> str:
    """A column name made of [A-Za-z0-9_] that does not start with a digit."""
    out = _NAME_BAD.sub("_", name.strip())
    if not out.strip("_"):
        return f"column_{index:02d}"
    if out[0].isdigit():
        out = "_" + out
    return out


def unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base, n = name, seen.get(name.lower(), 0)
        while name.lower() in seen:
            n += 1
            name = f"{base}_{n}"
        seen[name.lower()] = 0
        seen[base.lower()] = n
        out.append(name)
    return out


# ---------------------------------------------------------------------------------------------------
# JSONPaths


@dataclass(frozen=True)
class PathStep:
    kind: str  # "key" | "all" | "index"
    key: str = ""
    index: int = 0


_STEP = re.compile(
    r"\.([^.\[\]]+)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*\"((?:[^\"\\]|\\.)*)\"\s*\]|\[\s*(:|\*|\d+)\s*\]"
)


def parse_jsonpath(path: str) -> tuple[PathStep, ...]:
    """`$`, `$.a.b`, `$['a b']`, `$.arr[:]`, `$.arr[0]`, `$.arr[:].b` → steps. Raises ImportFormatError."""
    text = path.strip()
    if text.startswith("json:"):
        text = text[5:].strip()
    if not text.startswith("$"):
        raise ImportFormatError(f"JSONPath {path!r} must start with $")
    steps: list[PathStep] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m:
            raise ImportFormatError(f"JSONPath {path!r} is not supported (at {text[pos:]!r})")
        if m.group(1) is not None:
            steps.append(PathStep("key", key=m.group(1)))
        elif m.group(2) is not None or m.group(3) is not None:
            raw = m.group(2) if m.group(2) is not None else m.group(3)
            steps.append(PathStep("key", key=re.sub(r"\\(.)", r"\1", raw)))
        elif m.group(4) in (":", "*"):
            steps.append(PathStep("all"))
        else:
            steps.append(PathStep("index", index=int(m.group(4))))
        pos = m.end()
    return tuple(steps)


def column_path(col: Column) -> tuple[PathStep, ...]:
    """The JSONPath of a column; a column without one maps by its name."""
    if col.jsonpath:
        return parse_jsonpath(col.jsonpath)
    return (PathStep("key", key=col.name),)


# ---------------------------------------------------------------------------------------------------
# CSV header detection (a sample only)

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z|[+-]?(inf|nan)\Z", re.I)
_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?\Z|\d{8,}\Z"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\Z")
_BOOL = re.compile(r"(true|false|0|1)\Z", re.I)


def _conforms(value: str, type_text: str) -> bool | None:
    """Whether a CSV field fits a type: True/False, or None when the type tells nothing (String)."""
    t = type_text.strip()
    for wrapper in ("LowCardinality(", "Nullable("):
        if t.startswith(wrapper):
            t = t[len(wrapper) : -1].strip()
    v = value.strip()
    if t.startswith(("String", "FixedString", "Enum", "Array", "Map", "Tuple", "JSON", "Dynamic", "Variant")):
        return None
    if v == "":
        return None
    if re.match(r"U?Int\d+\Z", t):
        return bool(_INT.match(v))
    if t.startswith(("Float", "Decimal", "BFloat")):
        return bool(_FLOAT.match(v))
    if t.startswith(("Date", "DateTime")):
        return bool(_DATE.match(v))
    if t == "UUID":
        return bool(_UUID.match(v))
    if t in ("Bool", "Boolean"):
        return bool(_BOOL.match(v))
    return None


def _first_records(sample: bytes, dialect: CsvDialect, count: int) -> list[list[str]]:
    text = sample.removeprefix(BOM).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter)
    out: list[list[str]] = []
    try:
        for record in reader:
            if not record or all(not f.strip() for f in record):
                continue
            out.append(record)
            if len(out) >= count:
                break
    except csv.Error:
        pass
    return out


def detect_csv_header(sample: bytes, columns: Sequence[Column], dialect: CsvDialect | None = None) -> bool:
    """True when the first record is a header: its fields are the column names (case-insensitive, after
    sanitising), or it does not fit the column types while the next record does."""
    dialect = dialect or CsvDialect()
    records = _first_records(sample, dialect, 2)
    if not records:
        return False
    first = records[0]
    names = {c.name.lower() for c in columns}
    fields = [f.strip().lower() for f in first if f.strip()]
    matches = sum(1 for f in fields if f in names or sanitize_name(f).lower() in names)
    if matches and (2 * matches >= len(fields) or matches == len(names)):
        return True
    typed = [(f, c.type) for f, c in zip(first, columns, strict=False)]
    verdicts = [_conforms(f, t) for f, t in typed]
    if False not in verdicts:
        return False
    if len(records) < 2:
        return True
    second = [_conforms(f, c.type) for f, c in zip(records[1], columns, strict=False)]
    return second.count(False) < verdicts.count(False)


def header_fields(sample: bytes, dialect: CsvDialect | None = None) -> list[str]:
    records = _first_records(sample, dialect or CsvDialect(), 1)
    return records[0] if records else []


def count_fields(sample: bytes, dialect: CsvDialect | None = None) -> int:
    records = _first_records(sample, dialect or CsvDialect(), 1)
    return len(records[0]) if records else 0


# ---------------------------------------------------------------------------------------------------
# Schema inference (mode=create)

ENGINE_FORMAT = {"csv": "CSV", "ndjson": "JSONEachRow", "parquet": "Parquet"}


def file_source(path: Path, engine_format: str, structure: str | None, compressed: bool) -> str:
    """`file('<path>', '<format>'[, '<structure>'][, 'gzip'])` with every part quoted."""
    args = [quote_string(str(path)), quote_string(engine_format)]
    if structure is not None or compressed:
        args.append(quote_string(structure if structure is not None else "auto"))
    if compressed:
        args.append(quote_string("gzip"))
    return f"file({', '.join(args)})"


def _describe(engine: Engine, source: str, settings: dict) -> list[tuple[str, str]]:
    res = engine.execute(f"DESCRIBE TABLE {source}", "TabSeparated", settings=settings)
    out = []
    for line in res.data.decode().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            out.append((_unescape_tsv(parts[0]), _unescape_tsv(parts[1])))
    return out


def _unescape_tsv(value: str) -> str:
    return re.sub(
        r"\\(.)", lambda m: {"t": "\t", "n": "\n", "\\": "\\", "0": "\0"}.get(m.group(1), m.group(1)), value
    )


def _split_top(text: str) -> list[str]:
    parts, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _tuple_fields(type_text: str) -> list[tuple[str, str]] | None:
    """Named fields of `Tuple(a T, b U)` (through Nullable), or None."""
    t = type_text.strip()
    if t.startswith("Nullable(") and t.endswith(")"):
        t = t[9:-1].strip()
    if not (t.startswith("Tuple(") and t.endswith(")")):
        return None
    fields = []
    for part in _split_top(t[6:-1]):
        if part.startswith("`"):
            end = part.index("`", 1)
            name, rest = part[1:end], part[end + 1 :]
        else:
            name, _, rest = part.partition(" ")
        if not rest.strip():
            return None
        fields.append((name, rest.strip()))
    return fields


def _path_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f".{key}"
    return "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _flatten(name: str, type_text: str, path: str, out: list[tuple[str, str, str]]) -> None:
    fields = _tuple_fields(type_text)
    if fields:
        for key, sub in fields:
            _flatten(f"{name}_{key}", sub, path + _path_key(key), out)
        return
    if type_text.startswith("Array("):
        path += "[:]"
    out.append((name, type_text, path))


def _narrow(type_text: str) -> str:
    """Engine-inferred types, made friendlier for a table: DateTime64(9) → DateTime64(3)."""
    return type_text.replace("DateTime64(9)", "DateTime64(3)")


def _csv_nullables(engine: Engine, path: Path, sniff: Sniff, flat, described, settings) -> list:
    """The engine does not make a CSV column Nullable for empty fields, but an import reads an empty
    field of a non-String column as a missing value: such columns become Nullable."""
    header = not all(name == f"c{i + 1}" for i, (name, _) in enumerate(described))
    structure = ", ".join(f"c{i} Nullable(String)" for i in range(len(described)))
    source = file_source(path, "CSVWithNames" if header else "CSV", structure, sniff.gzip)
    checks = ", ".join(f"max(ifNull(c{i}, '') = '')" for i in range(len(described)))
    query = f"SELECT [{checks}] FROM (SELECT * FROM {source} LIMIT 10000)"
    extra = {"input_format_with_names_use_header": 0, "input_format_allow_errors_ratio": 1}
    res = engine.execute(query, "JSONCompactEachRow", settings={**settings, **extra})
    empties = json.loads(res.data.decode().splitlines()[0])[0] if res.data.strip() else []
    out = []
    for (name, type_text, jsonpath), has_empty in zip(flat, empties, strict=False):
        wrap = has_empty and not type_text.startswith(("Nullable(", "String", "Array(", "Map(", "Tuple("))
        out.append((name, f"Nullable({type_text})" if wrap else type_text, jsonpath))
    return out


def infer_schema(engine: Engine, path: Path, fmt: str, dialect: CsvDialect | None = None) -> list[Column]:
    """Columns for mode=create, from the engine's own schema inference over a sample of the file."""
    if fmt not in FORMATS:
        raise ImportFormatError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    sniff = sniff_file(path)
    settings: dict[str, object] = {
        "input_format_max_rows_to_read_for_schema_inference": 10000,
        "schema_inference_make_columns_nullable": 2,  # Nullable only when the sample has NULLs
        "schema_inference_use_cache_for_file": 0,
    }
    if fmt == "csv":
        settings.update((dialect or CsvDialect()).check().engine_settings())
        settings["input_format_csv_detect_header"] = 1
    if fmt == "ndjson":
        settings["input_format_json_try_infer_named_tuples_from_objects"] = 1
        settings["input_format_json_read_objects_as_strings"] = 0
    source = file_source(path, ENGINE_FORMAT[fmt], None, sniff.gzip)
    described = _describe(engine, source, settings)
    if not described:
        raise ImportFormatError("could not infer a schema: the file has no rows")
    flat: list[tuple[str, str, str | None]] = []
    for i, (name, type_text) in enumerate(described):
        if fmt == "csv":
            raw = name.removeprefix("\ufeff")
            flat.append((sanitize_name(raw, i + 1), _narrow(type_text), None))
        else:
            parts: list[tuple[str, str, str]] = []
            _flatten(name, type_text, "$" + _path_key(name), parts)
            flat.extend((sanitize_name(n, i + 1), _narrow(t), p) for n, t, p in parts)
    if fmt == "csv":
        flat = _csv_nullables(engine, path, sniff, flat, described, settings)
    names = unique_names([n for n, _, _ in flat])
    return [Column(name=n, type=t, jsonpath=p) for n, (_, t, p) in zip(names, flat, strict=True)]


def schema_text(columns: list[Column]) -> str:
    """A SCHEMA text (`name` Type `json:$.path`, …) for inferred columns, as mode=create takes it."""
    return render_schema(columns)
