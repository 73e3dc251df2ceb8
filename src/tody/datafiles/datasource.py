""".datasource files: parse ↔ render, and the same object built from the API's form fields.

Syntax (Tinybird's datafile format): instructions are words at the start of a line, `INSTR value` with the
value bare, "double-quoted" or 'single-quoted', or `INSTR >` followed by indented lines (a block). A
block runs until the next line that is neither blank, indented nor a comment. `#` lines are comments
(inside DESCRIPTION and FORWARD_QUERY only when they start at column 0, since markdown and SQL may use
`#` themselves). Unknown instructions (KAFKA_*, IMPORT_*, VERSION, BACKFILL, ...) are kept in `extra`.

Canonical form (what `render_datasource` writes; `render(parse(x)) == x` for such files):

    DESCRIPTION >
        text

    SCHEMA >
        `a` DateTime `json:$.a`,
        `b` String `json:$.b`

    INDEXES >
        idx_b b TYPE bloom_filter GRANULARITY 4

    ENGINE "MergeTree"
    ENGINE_PARTITION_KEY "toYYYYMM(a)"
    ENGINE_SORTING_KEY "a, b"

    <extra instructions, in file order>

    TOKEN reader READ

    SHARED_WITH >
        other_workspace

    TAGS "a,b"

    FORWARD_QUERY >
        SELECT ...
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from tody.datafiles.schema import parse_indexes, parse_schema, render_column, render_index, render_schema
from tody.engine.ddl import Column, DDLError, Index, TableEngine

__all__ = [
    "ENGINE_INSTRUCTIONS",
    "DatafileError",
    "DatasourceFile",
    "datasource_from_params",
    "parse_datasource",
    "render_datasource",
]

# Instruction → TableEngine attribute, in canonical order. The API parameter is the lowercase instruction.
ENGINE_INSTRUCTIONS = {
    "ENGINE_PARTITION_KEY": "partition_key",
    "ENGINE_SORTING_KEY": "sorting_key",
    "ENGINE_PRIMARY_KEY": "primary_key",
    "ENGINE_SAMPLING_KEY": "sampling_key",
    "ENGINE_TTL": "ttl",
    "ENGINE_VER": "ver",
    "ENGINE_IS_DELETED": "is_deleted",
    "ENGINE_SIGN": "sign",
    "ENGINE_VERSION": "version",
    "ENGINE_SUMMING_COLUMNS": "summing_columns",
    "ENGINE_SETTINGS": "settings",
}
_TEXT_BLOCKS = ("DESCRIPTION", "FORWARD_QUERY")
_SINGLE = ("DESCRIPTION", "SCHEMA", "INDEXES", "ENGINE", "SHARED_WITH", "TAGS", "FORWARD_QUERY")
_INSTRUCTION = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:\s+(.*?))?\s*\Z")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_MAX_INCLUDE_DEPTH = 8


class DatafileError(DDLError):
    """A datafile that cannot be read; `line` is 1-based (None when the problem has no single line)."""

    def __init__(self, message: str, line: int | None = None, *, filename: str | None = None):
        where = ", ".join(p for p in (filename, f"line {line}" if line else None) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.line = line
        self.filename = filename


@dataclass
class DatasourceFile:
    columns: list[Column]
    engine: TableEngine = field(default_factory=TableEngine)
    description: str | None = None
    indexes: list[Index] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (name, "READ" | "APPEND")
    shared_with: list[str] = field(default_factory=list)
    tags: str | None = None
    forward_query: str | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, raw value; ">\n…" = block)

    @property
    def sql_schema(self) -> str:
        """The canonical one-line schema (API `schema.sql_schema`)."""
        return render_schema(self.columns)

    @property
    def has_jsonpaths(self) -> bool:
        return any(c.jsonpath is not None for c in self.columns)


# ---------------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Line:
    text: str
    number: int  # line number in the top-level file
    origin: str | None = None  # "x.incl line 3" for included lines


def _expand(text: str, loader, depth: int, origin: str | None, at: int | None) -> list[_Line]:
    lines: list[_Line] = []
    for n, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        number = at if at is not None else n
        where = f"{origin} line {n}" if origin else None
        m = _INSTRUCTION.match(raw)
        if loader is not None and m and m.group(1) == "INCLUDE":
            if depth >= _MAX_INCLUDE_DEPTH:
                raise DatafileError("INCLUDE is nested too deeply (or includes itself)", number)
            try:
                path = shlex.split(m.group(2) or "")[0]
            except (ValueError, IndexError):
                raise DatafileError('INCLUDE needs a file name: INCLUDE "file.incl"', number) from None
            try:
                included = loader(path)
            except (OSError, KeyError, ValueError) as exc:
                raise DatafileError(f"cannot read included file {path!r}: {exc}", number) from None
            lines.extend(_expand(included, loader, depth + 1, path, number))
        else:
            lines.append(_Line(raw, number, where))
    return lines


def _is_comment(line: _Line, *, text_block: bool) -> bool:
    stripped = line.text.lstrip()
    return stripped.startswith("#") and (not text_block or line.text.startswith("#"))


def _dedent(lines: list[_Line], *, text_block: bool) -> list[_Line]:
    """Blank out comments, trim blank lines at both ends, remove the common indentation."""
    body = [
        _Line("" if _is_comment(ln, text_block=text_block) else ln.text.rstrip(), ln.number, ln.origin)
        for ln in lines
    ]
    while body and not body[0].text.strip():
        body.pop(0)
    while body and not body[-1].text.strip():
        body.pop()
    indents = [ln.text[: len(ln.text) - len(ln.text.lstrip(" \t"))] for ln in body if ln.text.strip()]
    prefix = min(indents, key=len) if indents else ""
    while prefix and not all(ind.startswith(prefix) for ind in indents):
        prefix = prefix[:-1]
    return [_Line(ln.text[len(prefix) :] if ln.text.strip() else "", ln.number, ln.origin) for ln in body]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


class _Reader:
    """Splits datafile lines into statements. Subclasses name their own example instructions and may
    decide differently where a block ends."""

    example = "SCHEMA >"  # in "expected an instruction such as …"
    block_hint = ""  # after "a block opened with 'INSTRUCTION >'"

    def __init__(self, lines: list[_Line], filename: str | None):
        self.lines = lines
        self.filename = filename

    def error(self, message: str, line: _Line | None) -> DatafileError:
        if line is not None and line.origin:
            message = f"{message} (in {line.origin})"
        return DatafileError(message, line.number if line else None, filename=self.filename)

    def statements(self):
        """Yield (KEY, inline value | None, block lines | None, line)."""
        lines, i = self.lines, 0
        while i < len(lines):
            line = lines[i]
            if not line.text.strip() or line.text.lstrip().startswith("#"):
                i += 1
                continue
            if line.text[0] in " \t":
                raise self.error(
                    "unexpected indented line: instructions start at the beginning of a line, and "
                    f"indented lines belong to a block opened with 'INSTRUCTION >'{self.block_hint}",
                    line,
                )
            m = _INSTRUCTION.match(line.text)
            if not m:
                raise self.error(
                    f"expected an instruction such as {self.example}, got {line.text.strip()!r}", line
                )
            key, rest = m.group(1), (m.group(2) or "")
            if key != key.upper():
                raise self.error(f"instructions are written in uppercase: {key.upper()}, not {key}", line)
            i += 1
            if rest.strip() == ">":
                j = self._block_end(i)
                yield key, None, lines[i:j], line
                i = j
            else:
                yield key, rest, None, line

    def _block_end(self, i: int) -> int:
        """A block goes on over blank, indented and comment lines."""
        lines = self.lines
        while i < len(lines) and (not lines[i].text.strip() or lines[i].text[0] in " \t#"):
            i += 1
        return i


def _block_text(block: list[_Line], *, text_block: bool) -> tuple[str, list[_Line]]:
    body = _dedent(block, text_block=text_block)
    return "\n".join(ln.text for ln in body), body


def _offset_line(body: list[_Line], text: str, offset: int | None) -> _Line | None:
    if not body:
        return None
    if offset is None:
        return body[0]
    index = text[: max(0, min(offset, len(text)))].count("\n")
    return body[min(index, len(body) - 1)]


def parse_datasource(
    text: str, *, filename: str | None = None, include_loader: Callable[[str], str] | None = None
) -> DatasourceFile:
    """Parse .datasource text. `include_loader(path) -> text` resolves INCLUDE lines (kept as extra
    instructions when no loader is given). Raises DatafileError with the line number."""
    reader = _Reader(_expand(text, include_loader, 0, None, None), filename)
    seen: dict[str, _Line] = {}
    columns: list[Column] | None = None
    engine_values: dict[str, str] = {}
    ds = DatasourceFile(columns=[])
    for key, inline, block, line in reader.statements():
        if key in _SINGLE or key in ENGINE_INSTRUCTIONS:
            if key in seen:
                raise reader.error(f"{key} appears twice (first on line {seen[key].number})", line)
            seen[key] = line
        text_block = key in _TEXT_BLOCKS
        if block is not None:
            value, body = _block_text(block, text_block=text_block)
        else:
            value, body = _unquote(inline or ""), [line]
            if key in ("SCHEMA", "INDEXES"):
                value = (inline or "").strip()
        if key == "SCHEMA":
            if not value.strip():
                raise reader.error("SCHEMA is empty: write 'SCHEMA >' and one indented column per line", line)
            try:
                columns = parse_schema(value)
            except DDLError as exc:
                raise reader.error(exc.message, _offset_line(body, value, exc.offset) or line) from None
        elif key == "INDEXES":
            try:
                ds.indexes = parse_indexes(value)
            except DDLError as exc:
                raise reader.error(exc.message, _offset_line(body, value, exc.offset) or line) from None
        elif key == "DESCRIPTION":
            ds.description = value
        elif key == "FORWARD_QUERY":
            ds.forward_query = value
        elif key == "TAGS":
            ds.tags = value
        elif key == "SHARED_WITH":
            ds.shared_with = [w for w in re.split(r"[,\s]+", value) if w]
        elif key == "ENGINE":
            if not value.strip():
                raise reader.error('ENGINE needs a value, e.g. ENGINE "MergeTree"', line)
            engine_values["engine"] = value.strip()
        elif key in ENGINE_INSTRUCTIONS:
            if not value.strip():
                raise reader.error(f"{key} needs a value", line)
            engine_values[ENGINE_INSTRUCTIONS[key]] = value.strip()
        elif key.startswith("ENGINE_"):
            known = ", ".join(ENGINE_INSTRUCTIONS)
            raise reader.error(f"unknown engine instruction {key}; known ones: {known}", line)
        elif key == "TOKEN":
            ds.tokens.append(_parse_token(reader, inline if block is None else value, line))
        else:
            raw = (inline or "").strip() if block is None else ">\n" + value
            ds.extra.append((key, raw))
    if columns is None:
        raise DatafileError(
            "SCHEMA is required: add 'SCHEMA >' followed by the columns", None, filename=filename
        )
    ds.columns = columns
    ds.engine = TableEngine(**engine_values)
    return ds


def _parse_token(reader: _Reader, value: str | None, line: _Line) -> tuple[str, str]:
    try:
        parts = shlex.split(value or "")
    except ValueError:
        parts = []
    if not parts or len(parts) > 2 or not parts[0]:
        raise reader.error("expected TOKEN <name> READ|APPEND", line)
    scope = parts[1].upper() if len(parts) == 2 else "READ"
    if scope not in ("READ", "APPEND"):
        raise reader.error(f"TOKEN scope must be READ or APPEND, not {parts[1]!r}", line)
    return parts[0], scope


# ---------------------------------------------------------------------------------------------------
# Rendering


def _block(key: str, text: str) -> str:
    body = "\n".join("    " + ln if ln.strip() else "" for ln in text.split("\n"))
    return f"{key} >\n{body}" if text else f"{key} >"


def _value(key: str, value: str) -> str:
    """`KEY "value"`; a value that cannot be written on one quoted line becomes a block."""
    if "\n" in value:
        return _block(key, value)
    if '"' not in value:
        return f'{key} "{value}"'
    if "'" not in value:
        return f"{key} '{value}'"
    if value[0] == value[-1] and value[0] in "\"'":
        return _block(key, value)
    return f"{key} {value}"


def _token_line(name: str, scope: str) -> str:
    return f"TOKEN {name if _TOKEN_NAME.match(name) else shlex.quote(name)} {scope}"


def render_datasource(ds: DatasourceFile) -> str:
    """Canonical .datasource text (see the module docstring)."""
    sections: list[str] = []
    if ds.description is not None:
        sections.append(_block("DESCRIPTION", ds.description))
    columns = ",\n".join(render_column(c) for c in ds.columns)
    sections.append(_block("SCHEMA", columns))
    if ds.indexes:
        sections.append(_block("INDEXES", "\n".join(render_index(ix) for ix in ds.indexes)))
    engine_lines = [_value("ENGINE", ds.engine.engine or "MergeTree")]
    for key, attr in ENGINE_INSTRUCTIONS.items():
        value = getattr(ds.engine, attr)
        if value is not None:
            engine_lines.append(_value(key, value))
    sections.append("\n".join(engine_lines))
    inline: list[str] = []
    for key, raw in ds.extra:
        if raw.startswith(">\n") or raw == ">":
            if inline:
                sections.append("\n".join(inline))
                inline = []
            sections.append(_block(key, raw[2:]))
        else:
            inline.append(f"{key} {raw}" if raw else key)
    if inline:
        sections.append("\n".join(inline))
    if ds.tokens:
        sections.append("\n".join(_token_line(name, scope) for name, scope in ds.tokens))
    if ds.shared_with:
        sections.append(_block("SHARED_WITH", "\n".join(ds.shared_with)))
    if ds.tags is not None:
        sections.append(_value("TAGS", ds.tags))
    if ds.forward_query is not None:
        sections.append(_block("FORWARD_QUERY", ds.forward_query))
    return "\n\n".join(sections) + "\n"


# ---------------------------------------------------------------------------------------------------
# API form fields


def _param(params: Mapping[str, str], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def datasource_from_params(params: Mapping[str, str]) -> DatasourceFile:
    """Build a DatasourceFile from POST /v0/datasources form fields: `schema`, `engine`, `engine_*`
    (sorting_key, partition_key, primary_key, sampling_key, ttl, ver, is_deleted, sign, version,
    summing_columns, settings), `description`, `indexes` (one per line or comma-separated), `tags`.
    A missing `schema` gives no columns (CSV creates infer them). Raises DDLError naming the parameter."""
    schema = _param(params, "schema")
    try:
        columns = parse_schema(schema) if schema else []
    except DDLError as exc:
        raise DDLError(f"Invalid schema: {exc.message}", offset=exc.offset) from None
    try:
        indexes = parse_indexes(params.get("indexes"))
    except DDLError as exc:
        raise DDLError(f"Invalid indexes: {exc.message}") from None
    values = {f.name: _param(params, f"engine_{f.name}") for f in fields(TableEngine) if f.name != "engine"}
    engine = TableEngine(engine=_param(params, "engine") or "MergeTree", **values)
    description = params.get("description")
    return DatasourceFile(
        columns=columns,
        engine=engine,
        description=None if description is None else str(description),
        indexes=indexes,
        tags=_param(params, "tags"),
    )
