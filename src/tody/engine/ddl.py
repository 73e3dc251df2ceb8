"""Data Source definitions → ClickHouse DDL (CREATE TABLE), and the checks that keep it safe.

Everything a user wrote (column names, types, DEFAULT expressions, keys, TTL, settings, indexes) ends up
in one CREATE TABLE statement, so this module is the last line of defence:

- identifiers are always rendered with backticks (`quote_identifier`);
- types must have the shape of a ClickHouse type (`check_type`): a known family name, optionally followed
  by one balanced parenthesised group made only of names, literals, commas, `=`, `-` and `.`; nothing can
  follow it. The full grammar (datafiles.types) normalises types before they get here;
- expressions (DEFAULT, keys, TTL, index expressions) are emitted as given: the caller validates them with
  the SQL gate. Here they are only tokenised and refused when they contain `;`, comments, unbalanced
  brackets or quotes, characters outside ClickHouse's expression syntax (`$` starts heredoc strings), or
  clause keywords at depth 0 (`SETTINGS`, `FORMAT`, `SELECT`, `ENGINE`, `ORDER`, `AS`, ...);
- settings come from an allow-list of MergeTree settings with plain literal values.

Nullable key columns: ClickHouse refuses Nullable columns in the sorting, primary or partition key unless
the table has `allow_nullable_key=1`. `create_table_sql` adds that setting by itself when a key names a
Nullable column (and the user did not set it), so such schemas work; `engine_full` (the display form)
shows only what the user asked for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from tody.engine.base import quote_identifier


class DDLError(ValueError):
    """A user-facing error: names the column or parameter and says what is expected.

    `offset` is the character position in the parsed text when known (used for line numbers)."""

    def __init__(self, message: str, *, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # normalised ClickHouse type text, e.g. "LowCardinality(String)"
    jsonpath: str | None = None  # "$.a.b", "$.arr[:]", "$"
    default: str | None = None  # expression text after DEFAULT / MATERIALIZED / ALIAS
    default_kind: str = "DEFAULT"  # DEFAULT | MATERIALIZED | ALIAS (only meaningful when default is set)
    codec: str | None = None  # text inside CODEC(...)

    @property
    def nullable(self) -> bool:
        return _unwrap(self.type, ("LowCardinality",)).startswith("Nullable(")


@dataclass(frozen=True)
class Index:
    name: str
    expr: str
    type: str
    granularity: int | None = None


@dataclass(frozen=True)
class TableEngine:
    engine: str = "MergeTree"
    sorting_key: str | None = None
    partition_key: str | None = None
    primary_key: str | None = None
    sampling_key: str | None = None
    ttl: str | None = None
    ver: str | None = None
    is_deleted: str | None = None
    sign: str | None = None
    version: str | None = None
    summing_columns: str | None = None
    settings: str | None = None  # "index_granularity=8192, ..."


ENGINES = ("MergeTree", "ReplacingMergeTree", "SummingMergeTree", "AggregatingMergeTree")
ENGINES += ("CollapsingMergeTree", "VersionedCollapsingMergeTree", "Null")
_ENGINES_BY_LOWER = {name.lower(): name for name in ENGINES}

# Type families the DDL accepts at the top of a column type (datafiles.types holds the full grammar).
TYPE_FAMILIES = frozenset(
    [f"{s}Int{n}" for s in ("", "U") for n in (8, 16, 32, 64, 128, 256)]
    + ["Float32", "Float64", "BFloat16", "Decimal", "Decimal32", "Decimal64", "Decimal128", "Decimal256"]
    + ["String", "FixedString", "UUID", "Date", "Date32", "DateTime", "DateTime64", "Time", "Time64"]
    + ["Bool", "Boolean", "IPv4", "IPv6", "Enum", "Enum8", "Enum16", "JSON", "Dynamic", "Variant"]
    + ["Nullable", "LowCardinality", "Array", "Map", "Tuple", "Nested"]
    + ["AggregateFunction", "SimpleAggregateFunction"]
    + ["Point", "Ring", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]
)

# MergeTree settings a Data Source may set. Storage placement, replication, background-thread and
# parts-limit settings are deliberately absent: they belong to the operator, not to a workspace.
MERGETREE_SETTINGS = frozenset(
    {"index_granularity", "index_granularity_bytes", "min_index_granularity_bytes"}
    | {"enable_mixed_granularity_parts", "use_const_adaptive_granularity", "allow_nullable_key"}
    | {"allow_floating_point_partition_key", "ttl_only_drop_parts", "merge_with_ttl_timeout"}
    | {"merge_with_recompression_ttl_timeout", "materialize_ttl_recalculate_only", "min_bytes_for_wide_part"}
    | {"min_rows_for_wide_part", "min_age_to_force_merge_seconds", "min_age_to_force_merge_on_partition_only"}
    | {"enable_block_number_column", "enable_block_offset_column", "deduplicate_merge_projection_mode"}
    | {"lightweight_mutation_projection_mode", "non_replicated_deduplication_window", "compress_marks"}
    | {"ratio_of_defaults_for_sparse_serialization", "compress_primary_key", "merge_max_block_size"}
    | {"min_compress_block_size", "max_compress_block_size", "vertical_merge_algorithm_min_rows_to_activate"}
    | {"vertical_merge_algorithm_min_columns_to_activate", "allow_experimental_replacing_merge_with_cleanup"}
    | {"add_implicit_sign_column_constraint_for_collapsing_engine"}
)

INDEX_TYPES = frozenset({"minmax", "set", "bloom_filter", "ngrambf_v1", "tokenbf_v1", "text"})
CODECS = frozenset({"NONE", "LZ4", "LZ4HC", "ZSTD", "Delta", "DoubleDelta", "Gorilla", "FPC", "T64", "GCD"})

# Clause keywords that may never appear at depth 0 of an expression slot.
_CLAUSE_WORDS = frozenset(
    {"SETTINGS", "FORMAT", "SELECT", "ENGINE", "ORDER", "PARTITION", "PRIMARY", "SAMPLE", "COMMENT"}
    | {"INTO", "AS", "UNION", "EXCEPT", "INTERSECT", "WITH", "FROM", "EMPTY", "CLONE"}
)
_COLUMN_WORDS = frozenset({"CODEC", "TTL", "DEFAULT", "MATERIALIZED", "ALIAS", "EPHEMERAL", "STATISTICS"})
_KEY_WORDS = frozenset({"TTL"})
_TTL_WORDS = frozenset({"TO"})  # TTL ... TO DISK/VOLUME: storage placement is the operator's
_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ---------------------------------------------------------------------------------------------------
# Tokenizer (ClickHouse lexical rules for the parts we need; shared with datafiles)


class Token(NamedTuple):
    kind: str  # ident | qident | string | number | op | comment | other
    value: str  # identifier / unescaped literal / operator text
    start: int
    end: int


_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[bB][01]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS2 = ("::", "->", "<=", ">=", "!=", "<>", "==", "||")
_OPS1 = set("()[]{},.+-*/%=<>?:;")


def _quoted(text: str, i: int, what: str) -> tuple[str, int]:
    """Read a quoted literal starting at text[i]; backslash escapes and doubled quotes, as ClickHouse."""
    quote = text[i]
    out: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(nxt, nxt))
            j += 2
        elif c == quote:
            if j + 1 < len(text) and text[j + 1] == quote:
                out.append(quote)
                j += 2
            else:
                return "".join(out), j + 1
        else:
            out.append(c)
            j += 1
    raise DDLError(f"Unterminated {what} starting at {text[i : i + 20]!r}", offset=i)


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; raises DDLError on unterminated quotes or comments."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "'":
            value, j = _quoted(text, i, "string")
            tokens.append(Token("string", value, i, j))
            i = j
        elif c in '`"':
            value, j = _quoted(text, i, "quoted name")
            tokens.append(Token("qident", value, i, j))
            i = j
        elif text.startswith("--", i) or c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            tokens.append(Token("comment", text[i:j], i, j))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise DDLError("Unterminated comment", offset=i)
            tokens.append(Token("comment", text[i : j + 2], i, j + 2))
            i = j + 2
        elif (m := _NUMBER.match(text, i)) and (c.isdigit() or c == "."):
            tokens.append(Token("number", m.group(), i, m.end()))
            i = m.end()
        elif m := _IDENT.match(text, i):
            tokens.append(Token("ident", m.group(), i, m.end()))
            i = m.end()
        elif text[i : i + 2] in _OPS2:
            tokens.append(Token("op", text[i : i + 2], i, i + 2))
            i += 2
        else:
            tokens.append(Token("op" if c in _OPS1 else "other", c, i, i + 1))
            i += 1
    return tokens


_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _scan(tokens: Sequence[Token], what: str):
    """Yield (depth, token) and check brackets balance."""
    stack: list[str] = []
    for tok in tokens:
        if tok.kind == "op" and tok.value in "([{":
            yield len(stack), tok
            stack.append(tok.value)
        elif tok.kind == "op" and tok.value in _CLOSERS:
            if not stack or stack[-1] != _CLOSERS[tok.value]:
                raise DDLError(f"{what}: unbalanced {tok.value!r}", offset=tok.start)
            stack.pop()
            yield len(stack), tok
        else:
            yield len(stack), tok
    if stack:
        raise DDLError(f"{what}: unclosed {stack[-1]!r}")


def check_expression(
    text: str, what: str, *, allow_commas: bool = True, extra_words: frozenset[str] = frozenset()
) -> str:
    """Defence in depth for an expression slot. Returns the stripped text or raises DDLError."""
    text = (text or "").strip()
    if not text:
        raise DDLError(f"{what} is empty")
    forbidden = _CLAUSE_WORDS | extra_words
    for depth, tok in _scan(tokenize(text), what):
        if tok.kind == "comment":
            raise DDLError(f"{what} must not contain comments: {text!r}")
        if tok.kind == "other" or tok.value == ";":
            raise DDLError(f"{what} contains {tok.value!r}, which is not allowed here: {text!r}")
        if depth == 0 and tok.kind == "ident" and tok.value.upper() in forbidden:
            raise DDLError(f"{what} must not contain the keyword {tok.value.upper()}: {text!r}")
        if depth == 0 and not allow_commas and tok.value == "," and tok.kind == "op":
            raise DDLError(f"{what} must be a single expression (found a ',' outside brackets): {text!r}")
    return text


def check_type(text: str, what: str = "type") -> str:
    """Shape check for a column type (see module doc). Returns the stripped text."""
    text = (text or "").strip()
    tokens = tokenize(text)
    if not tokens or tokens[0].kind != "ident" or tokens[0].value not in TYPE_FAMILIES:
        raise DDLError(f"{what}: {text!r} is not a supported ClickHouse type")
    if len(tokens) == 1:
        return text
    if tokens[1].value != "(" or tokens[-1].value != ")":
        raise DDLError(f"{what}: unexpected text in type {text!r}")
    for depth, tok in _scan(tokens[1:], what):
        if tok.kind in ("comment", "other") or (tok.kind == "op" and tok.value not in "(),=-."):
            raise DDLError(f"{what}: unexpected {tok.value!r} in type {text!r}")
        if depth == 0 and tok is not tokens[1] and tok is not tokens[-1]:
            raise DDLError(f"{what}: unexpected text after type {text!r}")
    return text


def _unwrap(type_text: str, wrappers: Sequence[str]) -> str:
    t = type_text.strip()
    changed = True
    while changed:
        changed = False
        for w in wrappers:
            if t.startswith(w + "(") and t.endswith(")"):
                t, changed = t[len(w) + 1 : -1].strip(), True
    return t


def _family(type_text: str) -> str:
    t = _unwrap(type_text, ("Nullable", "LowCardinality"))
    m = _IDENT.match(t)
    return m.group() if m else ""


def is_datetime(type_text: str) -> bool:
    """Date, Date32, DateTime, DateTime64 (through Nullable/LowCardinality)."""
    return _family(type_text) in ("Date", "Date32", "DateTime", "DateTime64")


def is_numeric(type_text: str) -> bool:
    """Integers, floats and decimals (through Nullable/LowCardinality)."""
    fam = _family(type_text)
    return bool(re.fullmatch(r"U?Int\d+|Float32|Float64|BFloat16|Decimal\d*", fam))


def is_string(type_text: str) -> bool:
    """String and FixedString (through Nullable/LowCardinality)."""
    return _family(type_text) in ("String", "FixedString")


def _name_expr(name: str) -> str:
    return name if _SIMPLE_NAME.match(name) else quote_identifier(name)


def default_sorting_key(columns: Sequence[Column]) -> str:
    """Tinybird Classic rule: first DateTime-like column, else first numeric, else first String, else
    "tuple()". Nullable and ALIAS columns are skipped (they cannot be keys without extra settings)."""
    candidates = [c for c in columns if not c.nullable and not (c.default and c.default_kind == "ALIAS")]
    for test in (is_datetime, is_numeric, is_string):
        for col in candidates:
            if test(col.type):
                return _name_expr(col.name)
    return "tuple()"


# ---------------------------------------------------------------------------------------------------
# Settings, indexes, codecs


def parse_settings(text: str | None) -> list[tuple[str, str]]:
    """`"index_granularity=8192, ttl_only_drop_parts=1"` → [(key, literal)], checked and normalised."""
    if text is None or not text.strip():
        return []
    out: list[tuple[str, str]] = []
    for part in _split_depth0(text, "ENGINE_SETTINGS"):
        toks = tokenize(part)
        if len(toks) < 3 or toks[0].kind != "ident" or toks[1].value != "=":
            raise DDLError(f"ENGINE_SETTINGS: expected key=value, got {part.strip()!r}")
        key = toks[0].value
        if key not in MERGETREE_SETTINGS:
            raise DDLError(
                f"ENGINE_SETTINGS: setting {key!r} is not allowed. "
                f"Allowed settings: {', '.join(sorted(MERGETREE_SETTINGS))}"
            )
        rest = toks[2:]
        if len(rest) == 2 and rest[0].value == "-" and rest[1].kind == "number":
            value = "-" + rest[1].value
        elif len(rest) == 1 and rest[0].kind == "number":
            value = rest[0].value
        elif len(rest) == 1 and rest[0].kind in ("ident", "string") and _SIMPLE_NAME.match(rest[0].value):
            low = rest[0].value.lower()
            value = low if rest[0].kind == "ident" and low in ("true", "false") else f"'{rest[0].value}'"
        else:
            raise DDLError(f"ENGINE_SETTINGS: {key} needs a plain number, true/false or word value")
        out.append((key, value))
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise DDLError("ENGINE_SETTINGS: a setting appears twice")
    return out


def _split_depth0(text: str, what: str) -> list[str]:
    parts, start = [], 0
    for depth, tok in _scan(tokenize(text), what):
        if depth == 0 and tok.kind == "op" and tok.value == ",":
            parts.append(text[start : tok.start])
            start = tok.end
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _check_call_list(
    text: str, allowed: frozenset[str], what: str, *, allow_kwargs: bool, single: bool = False
) -> str:
    """`name[(literal, ...)]` items separated by commas, names from `allowed`."""
    text = (text or "").strip()
    items = _split_depth0(text, what) if text else [""]
    if single and len(items) > 1:
        raise DDLError(f"{what}: expected one item, got {text!r}")
    for item in items:
        toks = tokenize(item)
        if not toks or toks[0].kind != "ident" or toks[0].value not in allowed:
            raise DDLError(
                f"{what}: {item.strip()!r} is not supported; use one of: {', '.join(sorted(allowed))}"
            )
        if len(toks) == 1:
            continue
        if toks[1].value != "(" or toks[-1].value != ")":
            raise DDLError(f"{what}: unexpected text in {item.strip()!r}")
        for part in _split_depth0(item[toks[1].end : toks[-1].start], what) if len(toks) > 2 else []:
            ptoks = tokenize(part)
            if allow_kwargs and len(ptoks) == 3 and ptoks[0].kind == "ident" and ptoks[1].value == "=":
                ptoks = ptoks[2:]
            if len(ptoks) == 2 and ptoks[0].value == "-":
                ptoks = ptoks[1:]
            if len(ptoks) != 1 or ptoks[0].kind not in ("number", "string"):
                raise DDLError(f"{what}: arguments must be literals, got {part.strip()!r}")
    return text


def check_codec(text: str, what: str = "CODEC") -> str:
    return _check_call_list(text, CODECS, what, allow_kwargs=False)


def check_index(index: Index) -> Index:
    what = f"index {index.name!r}"
    if not index.name or not _SIMPLE_NAME.match(index.name):
        raise DDLError(f"{what}: index names use letters, digits and underscores, not starting with a digit")
    check_expression(index.expr, f"{what} expression", allow_commas=False, extra_words=_KEY_WORDS)
    _check_call_list(index.type, INDEX_TYPES, f"{what} TYPE", allow_kwargs=True, single=True)
    if index.granularity is not None and not (isinstance(index.granularity, int) and index.granularity > 0):
        raise DDLError(f"{what}: GRANULARITY must be a positive integer")
    return index


# ---------------------------------------------------------------------------------------------------
# Engine validation and rendering

_ENGINE_PARAMS = {  # parameter → engines that take it
    "ver": ("ReplacingMergeTree",),
    "is_deleted": ("ReplacingMergeTree",),
    "sign": ("CollapsingMergeTree", "VersionedCollapsingMergeTree"),
    "version": ("VersionedCollapsingMergeTree",),
    "summing_columns": ("SummingMergeTree",),
}
_KEY_PARAMS = ("sorting_key", "partition_key", "primary_key", "sampling_key", "ttl", "settings")


def _column_map(columns: Sequence[Column]) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for col in columns:
        if col.name in out:
            raise DDLError(f"Column {col.name!r} appears twice")
        out[col.name] = col
    return out


def _strip_name(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1]
    return text


def _engine_column(cols: dict[str, Column], param: str, value: str, engine: str, check, expected: str) -> str:
    name = _strip_name(value)
    col = cols.get(name)
    what = f"ENGINE_{param.upper()} of {engine}"
    if col is None:
        raise DDLError(f"{what}: column {name!r} does not exist in the schema")
    if col.nullable or not check(col.type):
        raise DDLError(f"{what}: column {name!r} is {col.type}; it must be {expected}")
    return name


def _sortable_version(t: str) -> bool:
    return is_numeric(t) or is_datetime(t)


_COLUMN_PARAMS = (  # parameter, type check, what the type must be
    ("ver", _sortable_version, "a number or a date"),
    ("is_deleted", lambda t: _family(t) in ("UInt8", "Bool"), "UInt8"),
    ("sign", lambda t: _family(t) == "Int8", "Int8"),
    ("version", _sortable_version, "numeric"),
)


def validate_engine(columns: Sequence[Column], engine: TableEngine) -> TableEngine:
    """Check an engine definition against the columns; return it with defaults filled in."""
    cols = _column_map(columns)
    name = _ENGINES_BY_LOWER.get((engine.engine or "MergeTree").strip().removesuffix("()").lower())
    if name is None:
        raise DDLError(f"Unknown engine {engine.engine!r}; use one of: {', '.join(ENGINES)}")
    eng = replace(engine, engine=name)
    for param, engines in _ENGINE_PARAMS.items():
        if getattr(eng, param) is not None and name not in engines:
            raise DDLError(f"ENGINE_{param.upper()} only applies to {' and '.join(engines)}, not {name}")
    if name == "Null":
        used = ", ".join("ENGINE_" + p.upper() for p in _KEY_PARAMS if getattr(eng, p) is not None)
        if used:
            raise DDLError(f"The Null engine stores nothing and takes no {used}")
        return eng
    if eng.is_deleted is not None and eng.ver is None:
        raise DDLError("ENGINE_IS_DELETED of ReplacingMergeTree needs ENGINE_VER too")
    if name in ("CollapsingMergeTree", "VersionedCollapsingMergeTree") and eng.sign is None:
        raise DDLError(f"{name} needs ENGINE_SIGN: an Int8 column holding 1 or -1")
    if name == "VersionedCollapsingMergeTree" and eng.version is None:
        raise DDLError("VersionedCollapsingMergeTree needs ENGINE_VERSION: a numeric column")
    for param, check, expected in _COLUMN_PARAMS:
        if getattr(eng, param) is not None:
            found = _engine_column(cols, param, getattr(eng, param), name, check, expected)
            eng = replace(eng, **{param: found})
    if eng.summing_columns is not None:
        names = [
            _strip_name(p) for p in _split_depth0(eng.summing_columns.strip("() "), "ENGINE_SUMMING_COLUMNS")
        ]
        if not names:
            raise DDLError("ENGINE_SUMMING_COLUMNS is empty")
        for col_name in names:
            _engine_column(cols, "summing_columns", col_name, name, is_numeric, "numeric")
        eng = replace(eng, summing_columns=", ".join(names))
    for param in ("partition_key", "primary_key", "sampling_key"):
        if getattr(eng, param) is not None:
            what = f"ENGINE_{param.upper()}"
            eng = replace(eng, **{param: check_expression(getattr(eng, param), what, extra_words=_KEY_WORDS)})
    if eng.ttl is not None:
        eng = replace(eng, ttl=check_expression(eng.ttl, "ENGINE_TTL", extra_words=_TTL_WORDS))
    if eng.sorting_key is None or not eng.sorting_key.strip():
        eng = replace(eng, sorting_key=default_sorting_key(columns))
    else:
        sk = check_expression(eng.sorting_key, "ENGINE_SORTING_KEY", extra_words=_KEY_WORDS)
        eng = replace(eng, sorting_key=sk)
    parse_settings(eng.settings)
    return eng


def _key_clause(key: str) -> str:
    key = key.strip()
    if _split_depth0(key, "key")[1:]:
        return f"({key})"
    return key


def _engine_head(eng: TableEngine, quote) -> str:
    args: list[str] = []
    if eng.engine == "ReplacingMergeTree" and eng.ver:
        args = [quote(eng.ver)] + ([quote(eng.is_deleted)] if eng.is_deleted else [])
    elif eng.engine == "SummingMergeTree" and eng.summing_columns:
        names = [quote(_strip_name(p)) for p in _split_depth0(eng.summing_columns, "summing columns")]
        args = [f"({', '.join(names)})"] if len(names) > 1 else names
    elif eng.engine == "CollapsingMergeTree":
        args = [quote(eng.sign)]
    elif eng.engine == "VersionedCollapsingMergeTree":
        args = [quote(eng.sign), quote(eng.version)]
    return f"{eng.engine}({', '.join(args)})" if args else eng.engine


def _engine_clauses(eng: TableEngine, quote, settings: list[tuple[str, str]]) -> list[str]:
    parts = [_engine_head(eng, quote)]
    if eng.engine == "Null":
        return parts
    if eng.partition_key:
        parts.append(f"PARTITION BY {_key_clause(eng.partition_key)}")
    parts.append(f"ORDER BY {_key_clause(eng.sorting_key or 'tuple()')}")
    if eng.primary_key:
        parts.append(f"PRIMARY KEY {_key_clause(eng.primary_key)}")
    if eng.sampling_key:
        parts.append(f"SAMPLE BY {eng.sampling_key}")
    if eng.ttl:
        parts.append(f"TTL {eng.ttl}")
    if settings:
        parts.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in settings))
    return parts


def engine_full(engine: TableEngine) -> str:
    """Display form, e.g. "ReplacingMergeTree(ver) PARTITION BY toYYYYMM(d) ORDER BY (a, d) TTL ..."."""
    eng = replace(engine, engine=_ENGINES_BY_LOWER.get(engine.engine.strip().lower(), engine.engine))
    return " ".join(_engine_clauses(eng, _name_expr, parse_settings(eng.settings)))


def _key_names(text: str | None) -> set[str]:
    if not text:
        return set()
    return {t.value for t in tokenize(text) if t.kind in ("ident", "qident")}


def column_sql(col: Column) -> str:
    """One column definition for CREATE/ALTER TABLE (no jsonpath: that is Tinybird metadata)."""
    what = f"column {col.name!r}"
    if not col.name:
        raise DDLError("A column has an empty name")
    parts = [quote_identifier(col.name), check_type(col.type, f"type of {what}")]
    if col.default is not None:
        kind = (col.default_kind or "DEFAULT").upper()
        if kind not in ("DEFAULT", "MATERIALIZED", "ALIAS"):
            raise DDLError(f"{what}: default kind must be DEFAULT, MATERIALIZED or ALIAS, not {kind!r}")
        expr = check_expression(
            col.default, f"{kind} of {what}", allow_commas=False, extra_words=_COLUMN_WORDS
        )
        parts.append(f"{kind} {expr}")
    if col.codec is not None:
        parts.append(f"CODEC({check_codec(col.codec, f'CODEC of {what}')})")
    return " ".join(parts)


def create_table_sql(
    database: str,
    table: str,
    columns: Sequence[Column],
    engine: TableEngine,
    indexes: Sequence[Index] = (),
    *,
    if_not_exists: bool = False,
) -> str:
    """CREATE TABLE for a Data Source. Validates the engine (filling the default sorting key)."""
    if not columns:
        raise DDLError("A Data Source needs at least one column")
    eng = validate_engine(columns, engine)
    lines = [column_sql(col) for col in columns]
    seen: set[str] = set()
    for ix in indexes:
        check_index(ix)
        if ix.name in seen:
            raise DDLError(f"Index {ix.name!r} appears twice")
        seen.add(ix.name)
        gran = f" GRANULARITY {ix.granularity}" if ix.granularity is not None else ""
        lines.append(f"INDEX {quote_identifier(ix.name)} {ix.expr.strip()} TYPE {ix.type.strip()}{gran}")
    settings = parse_settings(eng.settings)
    nullable = {c.name for c in columns if c.nullable}
    keys = _key_names(eng.sorting_key) | _key_names(eng.primary_key) | _key_names(eng.partition_key)
    if eng.engine != "Null" and nullable & keys and "allow_nullable_key" not in dict(settings):
        settings.append(("allow_nullable_key", "1"))
    head = "CREATE TABLE IF NOT EXISTS" if if_not_exists else "CREATE TABLE"
    body = ",\n".join("    " + line for line in lines)
    clauses = _engine_clauses(eng, quote_identifier, settings)
    tail = "\n".join([f"ENGINE = {clauses[0]}", *clauses[1:]])
    return f"{head} {quote_identifier(database)}.{quote_identifier(table)}\n(\n{body}\n)\n{tail}"
