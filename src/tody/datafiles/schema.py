"""The column list of a Data Source: the `schema` API parameter and the SCHEMA block of a .datasource.

    `timestamp` DateTime `json:$.timestamp`, `event` LowCardinality(String) `json:$.event` DEFAULT 'x'

Columns are separated by commas outside brackets and quotes. Each is a name (`` `name` `` or bare), a
type (see datafiles.types), then in any order: a jsonpath (`` `json:$.a.b` ``, or `json:$.a.b` without
backticks), `DEFAULT|MATERIALIZED|ALIAS expr`, `CODEC(...)`.

`render_schema` gives the canonical one-line form (`schema.sql_schema` in the API): the columns rendered
as `` `name` Type `json:$.path` DEFAULT x CODEC(y) `` joined by ", ". The tb CLI compares that, spaces
ignored, to the schema it pushed, so render(parse(x)) must equal x up to whitespace for usual schemas.

Indexes (`INDEXES` block, `indexes` API parameter) are parsed here too: `name expr TYPE type GRANULARITY n`,
one per line or separated by commas, with an optional leading `INDEX`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tody.datafiles.types import parse_type_at
from tody.engine.base import quote_identifier
from tody.engine.ddl import Column, DDLError, Index, Token, tokenize

__all__ = [
    "check_column_name",
    "parse_indexes",
    "parse_schema",
    "render_column",
    "render_index",
    "render_indexes",
    "render_schema",
]

_DEFAULT_KINDS = ("DEFAULT", "MATERIALIZED", "ALIAS")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_column_name(name: str, *, offset: int | None = None) -> str:
    """Letters, digits and underscores, not starting with a digit. Raises DDLError saying what is wrong."""
    if _NAME.match(name):
        return name
    if not name:
        problem = "is empty"
    elif name[0].isdigit():
        problem = "starts with a digit"
    else:
        bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c == "_")))
        problem = "contains a space" if bad.isspace() else f"contains {bad!r}"
    raise DDLError(
        f"Invalid column name {name!r}: it {problem}; use letters, digits and underscores, "
        "not starting with a digit",
        offset=offset,
    )


def _split(text: str, tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """Token index ranges of the comma-separated items at depth 0."""
    ranges, start, depth = [], 0, 0
    for i, tok in enumerate(tokens):
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            depth -= 1
            if depth < 0:
                raise DDLError(f"Unbalanced {tok.value!r}", offset=tok.start)
        elif depth == 0 and tok.kind == "op" and tok.value == ",":
            ranges.append((start, i))
            start = i + 1
    if depth > 0:
        raise DDLError("Unclosed '(' in the schema", offset=len(text))
    ranges.append((start, len(tokens)))
    return ranges


def _is_kw(tok: Token | None, *words: str) -> bool:
    return tok is not None and tok.kind == "ident" and tok.value.upper() in words


def _bare_jsonpath(text: str, toks: Sequence[Token], i: int, limit: int) -> int | None:
    """If toks[i] starts `json:$...` (no backticks), return the end offset of the path."""
    tok = toks[i]
    if tok.kind != "ident" or tok.value != "json" or i + 1 >= len(toks):
        return None
    colon = toks[i + 1]
    if colon.value != ":" or colon.start != tok.end or not text.startswith("$", colon.end):
        return None
    m = re.compile(r"\S+").match(text, colon.end, limit)
    assert m is not None
    return m.end()


def _parse_column(text: str, toks: Sequence[Token], end_offset: int) -> Column:
    first = toks[0]
    if first.kind == "qident":
        name = check_column_name(first.value, offset=first.start)
    else:
        word = re.compile(r"[^\s,]*").match(text, first.start)
        raw = word.group() if word else first.value
        if first.kind != "ident" or raw != first.value:
            check_column_name(raw, offset=first.start)
            raise DDLError(f"Invalid column name {raw!r}", offset=first.start)
        name = first.value
    if len(toks) == 1:
        raise DDLError(f"Column {name!r} has no type", offset=first.end)
    for tok in toks:
        if tok.kind == "comment":
            raise DDLError(f"Column {name!r}: comments are not allowed in a schema", offset=tok.start)
    try:
        col_type, i = parse_type_at(text, toks, 1)
    except DDLError as exc:
        raise DDLError(f"Column {name!r}: {exc.message}", offset=exc.offset) from None
    jsonpath = default = codec = None
    kind = "DEFAULT"
    while i < len(toks):
        tok = toks[i]
        if tok.kind == "qident" and text[tok.start + 1 : tok.start + 6] == "json:":
            if jsonpath is not None:
                raise DDLError(f"Column {name!r} has two jsonpaths", offset=tok.start)
            jsonpath, i = tok.value[5:].strip(), i + 1
        elif (path_end := _bare_jsonpath(text, toks, i, end_offset)) is not None:
            if jsonpath is not None:
                raise DDLError(f"Column {name!r} has two jsonpaths", offset=tok.start)
            jsonpath = text[toks[i + 1].end : path_end]
            while i < len(toks) and toks[i].start < path_end:
                i += 1
        elif _is_kw(tok, *_DEFAULT_KINDS):
            if default is not None:
                raise DDLError(
                    f"Column {name!r} has two DEFAULT/MATERIALIZED/ALIAS clauses", offset=tok.start
                )
            kind, i = tok.value.upper(), i + 1
            start, depth = i, 0
            while i < len(toks):
                t = toks[i]
                if t.kind == "op" and t.value in "([{":
                    depth += 1
                elif t.kind == "op" and t.value in ")]}":
                    depth -= 1
                elif depth == 0 and (
                    (_is_kw(t, "CODEC") and i + 1 < len(toks) and toks[i + 1].value == "(")
                    or (t.kind == "qident" and text[t.start + 1 : t.start + 6] == "json:")
                    or _bare_jsonpath(text, toks, i, end_offset) is not None
                    or _is_kw(t, *_DEFAULT_KINDS)
                ):
                    break
                i += 1
            if start == i:
                raise DDLError(f"Column {name!r}: {kind} needs an expression", offset=tok.end)
            default = text[toks[start].start : toks[i - 1].end].strip()
        elif _is_kw(tok, "CODEC") and i + 1 < len(toks) and toks[i + 1].value == "(":
            if codec is not None:
                raise DDLError(f"Column {name!r} has two CODEC clauses", offset=tok.start)
            depth, j = 0, i + 1
            while j < len(toks):
                depth += {"(": 1, ")": -1}.get(toks[j].value, 0) if toks[j].kind == "op" else 0
                if depth == 0:
                    break
                j += 1
            codec = text[toks[i + 1].end : toks[j].start].strip()
            if not codec:
                raise DDLError(f"Column {name!r}: CODEC() is empty", offset=tok.start)
            i = j + 1
        else:
            raise DDLError(
                f"Column {name!r}: unexpected {text[tok.start : end_offset].strip()!r} after the type "
                f"{col_type}; expected `json:$.path`, DEFAULT, MATERIALIZED, ALIAS or CODEC(...)",
                offset=tok.start,
            )
    if jsonpath is not None and not jsonpath.startswith("$"):
        raise DDLError(f"Column {name!r}: a jsonpath starts with '$', got {jsonpath!r}", offset=first.start)
    return Column(name, col_type, jsonpath=jsonpath, default=default, default_kind=kind, codec=codec)


def parse_schema(text: str) -> list[Column]:
    """Parse a column list; raises DDLError (with `offset` into `text`) naming the column at fault."""
    tokens = tokenize(text or "")
    if not tokens:
        raise DDLError("The schema is empty: give at least one column, e.g. `name` String", offset=0)
    ranges = _split(text, tokens)
    if len(ranges) > 1 and ranges[-1][0] == ranges[-1][1]:
        ranges.pop()  # tolerate one trailing comma
    columns: list[Column] = []
    seen: set[str] = set()
    for n, (a, b) in enumerate(ranges):
        if a == b:
            offset = tokens[a - 1].start if a else 0
            raise DDLError(f"Column {n + 1} of the schema is empty (two commas in a row?)", offset=offset)
        end_offset = tokens[b].start if b < len(tokens) else len(text)
        col = _parse_column(text, tokens[a:b], end_offset)
        if col.name in seen:
            raise DDLError(f"Column {col.name!r} appears twice", offset=tokens[a].start)
        seen.add(col.name)
        columns.append(col)
    return columns


def render_column(col: Column) -> str:
    """`` `name` Type `json:$.path` DEFAULT expr CODEC(c) `` (the parts that are set)."""
    parts = [quote_identifier(col.name), col.type]
    if col.jsonpath is not None:  # escaped as the parser unescapes backtick-quoted text
        parts.append("`json:" + col.jsonpath.replace("\\", "\\\\").replace("`", "\\`") + "`")
    if col.default is not None:
        parts.append(f"{col.default_kind or 'DEFAULT'} {col.default}")
    if col.codec is not None:
        parts.append(f"CODEC({col.codec})")
    return " ".join(parts)


def render_schema(columns: Sequence[Column], sep: str = ", ") -> str:
    """Canonical one-line schema (the API's `sql_schema`)."""
    return sep.join(render_column(c) for c in columns)


# ---------------------------------------------------------------------------------------------------
# Indexes


def _parse_index(text: str) -> Index:
    toks = tokenize(text)
    if toks and _is_kw(toks[0], "INDEX") and len(toks) > 1 and toks[1].kind in ("ident", "qident"):
        toks = toks[1:]
    if not toks or toks[0].kind not in ("ident", "qident"):
        raise DDLError(f"Index {text.strip()!r}: expected `name expression TYPE type GRANULARITY n`")
    name = toks[0].value
    depth, type_at, gran_at = 0, None, None
    for i, tok in enumerate(toks):
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            depth -= 1
        elif depth == 0 and i > 1 and _is_kw(tok, "TYPE"):
            type_at = i
        elif depth == 0 and type_at is not None and _is_kw(tok, "GRANULARITY"):
            gran_at = i
    if type_at is None or type_at < 2:
        raise DDLError(f"Index {name!r}: expected `{name} expression TYPE type [GRANULARITY n]`")
    expr = text[toks[1].start : toks[type_at - 1].end].strip()
    type_end = toks[gran_at - 1].end if gran_at is not None else toks[-1].end
    if gran_at is not None and type_at + 1 > gran_at - 1:
        raise DDLError(f"Index {name!r}: TYPE is empty")
    if type_at + 1 >= len(toks):
        raise DDLError(f"Index {name!r}: TYPE is empty")
    index_type = text[toks[type_at + 1].start : type_end].strip()
    granularity = None
    if gran_at is not None:
        rest = toks[gran_at + 1 :]
        if (
            len(rest) != 1
            or rest[0].kind != "number"
            or not rest[0].value.isdigit()
            or int(rest[0].value) < 1
        ):
            raise DDLError(f"Index {name!r}: GRANULARITY must be a positive integer")
        granularity = int(rest[0].value)
    return Index(name, expr, index_type, granularity)


def _index_chunks(text: str) -> list[str]:
    """Split index definitions at line breaks and commas outside brackets (a line that starts with TYPE
    or GRANULARITY continues the previous one)."""
    tokens = tokenize(text)
    bounds, start, depth = [], 0, 0
    for i, tok in enumerate(tokens):
        if tok.kind == "comment":
            raise DDLError("Comments are not allowed in index definitions", offset=tok.start)
        if (
            depth == 0
            and i > start
            and "\n" in text[tokens[i - 1].end : tok.start]
            and not _is_kw(tok, "TYPE", "GRANULARITY")
        ):
            bounds.append((start, i))
            start = i
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            depth -= 1
            if depth < 0:
                raise DDLError(f"Unbalanced {tok.value!r} in index definitions", offset=tok.start)
        elif depth == 0 and tok.kind == "op" and tok.value == ",":
            bounds.append((start, i))
            start = i + 1
    if depth > 0:
        raise DDLError("Unclosed '(' in index definitions", offset=len(text))
    bounds.append((start, len(tokens)))
    return [text[tokens[a].start : tokens[b - 1].end] for a, b in bounds if a < b]


def parse_indexes(text: str | None) -> list[Index]:
    """`name expr TYPE type GRANULARITY n` items, one per line and/or separated by commas."""
    if text is None or not text.strip():
        return []
    indexes = [_parse_index(chunk) for chunk in _index_chunks(text)]
    names = [ix.name for ix in indexes]
    if len(set(names)) != len(names):
        raise DDLError("Two indexes have the same name")
    return indexes


def render_index(index: Index) -> str:
    gran = f" GRANULARITY {index.granularity}" if index.granularity is not None else ""
    name = index.name if _NAME.match(index.name) else quote_identifier(index.name)
    return f"{name} {index.expr} TYPE {index.type}{gran}"


def render_indexes(indexes: Sequence[Index], sep: str = "\n") -> str:
    return sep.join(render_index(ix) for ix in indexes)
