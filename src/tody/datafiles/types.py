"""ClickHouse column types: a recursive-descent grammar that validates and normalises type text.

`normalize_type("LowCardinality( String )")` → `"LowCardinality(String)"`. Only the families below are
accepted, with ClickHouse's own rules about which types may nest in which (no Nullable(Array(...)),
LowCardinality only over String/FixedString/UUID, no Nullable Map keys, ...), so that every type this
grammar accepts creates a table. Names are case-sensitive, as in ClickHouse; the canonical text keeps the
family name as written (`Boolean` stays `Boolean`) and uses ClickHouse's spacing: `Map(K, V)`,
`DateTime64(3, 'UTC')`, `Enum8('a' = 1)`, `Tuple(a String, b Int8)`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from tody.engine.base import quote_identifier, quote_string
from tody.engine.ddl import (
    DDLError,
    Token,
    is_datetime,
    is_numeric,
    is_string,
    tokenize,
)

__all__ = ["is_datetime", "is_numeric", "is_string", "normalize_type", "parse_type_at"]

_INTS = [f"{s}Int{n}" for s in ("", "U") for n in (8, 16, 32, 64, 128, 256)]
SIMPLE = (
    frozenset(_INTS)
    | {"Float32", "Float64", "BFloat16", "String", "UUID", "Date", "Date32", "Time", "Bool", "Boolean"}
    | {"IPv4", "IPv6", "Point", "Ring", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
_DECIMAL_MAX = {"Decimal32": 9, "Decimal64": 18, "Decimal128": 38, "Decimal256": 76}
_ENUM_RANGE = {"Enum8": (-128, 127), "Enum16": (-32768, 32767), "Enum": (-32768, 32767)}
# Families that cannot sit inside Nullable(...) (ClickHouse: "cannot be inside Nullable type").
_NOT_NULLABLE = frozenset(
    {"Array", "Map", "LowCardinality", "Nullable", "Dynamic", "Variant", "AggregateFunction", "Nested"}
    | {"Ring", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
_LOWCARD_INNER = frozenset({"String", "FixedString", "UUID"})
_MAP_KEYS = (
    frozenset(_INTS)
    | {"Float32", "Float64", "String", "FixedString", "UUID", "Date", "Date32", "DateTime", "DateTime64"}
    | {"Enum", "Enum8", "Enum16", "IPv4", "IPv6", "Bool", "Boolean", "LowCardinality"}
    | {"Decimal", "Decimal32", "Decimal64", "Decimal128", "Decimal256"}
)
SIMPLE_AGGREGATE_FUNCTIONS = frozenset(
    {"any", "any_respect_nulls", "anyLast", "anyLast_respect_nulls", "min", "max", "sum"}
    | {"sumWithOverflow", "groupBitAnd", "groupBitOr", "groupBitXor", "sumMap", "minMap", "maxMap"}
    | {"groupArrayArray", "groupArrayLastArray", "groupUniqArrayArray", "groupUniqArrayArrayMap"}
    | {"sumMappedArrays", "minMappedArrays", "maxMappedArrays"}
)
FAMILIES = (
    SIMPLE
    | set(_DECIMAL_MAX)
    | {"Decimal", "FixedString", "DateTime", "DateTime64", "Time64", "Enum", "Enum8", "Enum16"}
    | {"JSON", "Dynamic", "Variant", "Nullable", "LowCardinality", "Array", "Map", "Tuple", "Nested"}
    | {"AggregateFunction", "SimpleAggregateFunction"}
)
_LOWER = {f.lower(): f for f in FAMILIES}
_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TZ = re.compile(r"[A-Za-z0-9_+\-/]{1,64}\Z")
_MAX_FIXEDSTRING = 0xFFFFFF
_MAX_DEPTH = 32


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    try:
        import zoneinfo

        return frozenset(zoneinfo.available_timezones())
    except Exception:  # pragma: no cover - no tz database on this system
        return frozenset()


def _name(name: str) -> str:
    return name if _SIMPLE_NAME.match(name) else quote_identifier(name)


class _Parser:
    def __init__(self, text: str, tokens: Sequence[Token], pos: int):
        self.text = text
        self.toks = tokens
        self.i = pos
        self.depth = 0

    # -- token helpers --
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def error(self, message: str, tok: Token | None = None) -> DDLError:
        tok = tok or self.peek()
        offset = tok.start if tok else len(self.text)
        return DDLError(message, offset=offset)

    def near(self, tok: Token | None) -> str:
        return "the end of the type" if tok is None else repr(self.text[tok.start : tok.end])

    def take(self, value: str, context: str) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != "op" or tok.value != value:
            raise self.error(f"{context}: expected {value!r} but found {self.near(tok)}")
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.value == value

    def integer(self, context: str, lo: int, hi: int, *, signed: bool = False) -> int:
        neg = signed and self.at("-")
        if neg:
            self.i += 1
        tok = self.peek()
        if tok is None or tok.kind != "number" or not tok.value.isdigit():
            raise self.error(f"{context}: expected an integer but found {self.near(tok)}")
        self.i += 1
        value = -int(tok.value) if neg else int(tok.value)
        if not lo <= value <= hi:
            raise self.error(f"{context}: {value} is out of range ({lo}..{hi})", tok)
        return value

    def string(self, context: str) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "string":
            raise self.error(f"{context}: expected a 'quoted string' but found {self.near(tok)}")
        self.i += 1
        return tok.value

    def args(self, context: str, item) -> list:
        """`( item, item, ... )` → the items' results."""
        self.take("(", context)
        out: list = []
        if self.at(")"):
            self.i += 1
            return out
        while True:
            out.append(item())
            if self.at(","):
                self.i += 1
                continue
            self.take(")", context)
            return out

    # -- grammar --
    def type(self, *, top: bool = False) -> tuple[str, str]:
        """Parse one type; returns (canonical text, family)."""
        tok = self.peek()
        if tok is None or tok.kind != "ident":
            raise self.error(f"Expected a type name but found {self.near(tok)}")
        family = tok.value
        if family not in FAMILIES:
            hint = _LOWER.get(family.lower())
            more = f"; did you mean {hint}?" if hint else ""
            raise self.error(f"Unknown type {family!r}{more}", tok)
        self.i += 1
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("Type is nested too deeply", tok)
        try:
            return getattr(self, "t_" + family, self.t_simple)(family, top), family
        finally:
            self.depth -= 1

    def t_simple(self, family: str, top: bool) -> str:
        if self.at("("):
            raise self.error(f"{family} takes no parameters")
        return family

    def t_Nullable(self, family: str, top: bool) -> str:
        self.take("(", family)
        inner, fam = self.type()
        if fam in _NOT_NULLABLE:
            raise self.error(f"{fam} cannot be inside Nullable: write Nullable inside it, or use a default")
        self.take(")", family)
        return f"Nullable({inner})"

    def t_LowCardinality(self, family: str, top: bool) -> str:
        self.take("(", family)
        start = self.peek()
        inner, fam = self.type()
        base = fam
        if fam == "Nullable":
            base = _family_of(inner[len("Nullable(") : -1])
        if base not in _LOWCARD_INNER:
            raise self.error(
                f"LowCardinality only applies to String, FixedString or UUID (optionally Nullable), not {inner}",
                start,
            )
        self.take(")", family)
        return f"LowCardinality({inner})"

    def t_Array(self, family: str, top: bool) -> str:
        self.take("(", family)
        inner, _ = self.type()
        self.take(")", family)
        return f"Array({inner})"

    def t_Map(self, family: str, top: bool) -> str:
        self.take("(", family)
        start = self.peek()
        key, fam = self.type()
        if fam not in _MAP_KEYS or "Nullable(" in key:
            raise self.error(
                f"Map keys cannot be {key}: use a string, number, date, UUID or Enum type", start
            )
        self.take(",", "Map(key, value)")
        value, _ = self.type()
        self.take(")", family)
        return f"Map({key}, {value})"

    def _element(self, named_ok: bool) -> tuple[str | None, str]:
        tok, nxt = self.peek(), self.peek(1)
        name = None
        if tok is not None and (
            tok.kind == "qident" or (tok.kind == "ident" and nxt and nxt.kind == "ident")
        ):
            if not named_ok:
                raise self.error("Only named elements are allowed here")
            name = tok.value
            if not name:
                raise self.error("Element names cannot be empty", tok)
            self.i += 1
        inner, _ = self.type()
        return name, inner

    def _elements(self, family: str, *, named: bool | None) -> list[str]:
        items: list[tuple[str | None, str]] = self.args(family, lambda: self._element(named is not False))
        names = [n for n, _ in items if n is not None]
        if named and len(names) != len(items):
            raise self.error(f"{family} needs a name for every element: {family}(name Type, ...)")
        if names and len(names) != len(items):
            raise self.error(f"{family}: either every element has a name or none has")
        if len(set(names)) != len(names):
            raise self.error(f"{family}: element names must be unique")
        return [f"{_name(n)} {t}" if n is not None else t for n, t in items]

    def t_Tuple(self, family: str, top: bool) -> str:
        return f"Tuple({', '.join(self._elements(family, named=None))})"

    def t_Nested(self, family: str, top: bool) -> str:
        if not top:
            raise self.error("Nested can only be the type of a column, not part of another type")
        elements = self._elements(family, named=True)
        if not elements:
            raise self.error("Nested needs at least one element")
        return f"Nested({', '.join(elements)})"

    def t_Variant(self, family: str, top: bool) -> str:
        def item() -> str:
            start = self.peek()
            inner, fam = self.type()
            if fam == "Nullable" or inner.startswith("LowCardinality(Nullable("):
                raise self.error("Nullable types are not allowed inside Variant", start)
            return inner

        items = self.args(family, item)
        if not items:
            raise self.error("Variant needs at least one type")
        return f"Variant({', '.join(items)})"

    def t_FixedString(self, family: str, top: bool) -> str:
        self.take("(", family)
        n = self.integer("FixedString(N)", 1, _MAX_FIXEDSTRING)
        self.take(")", family)
        return f"FixedString({n})"

    def t_Decimal(self, family: str, top: bool) -> str:
        if not self.at("("):
            return family
        self.take("(", family)
        p = self.integer("Decimal precision", 1, 76)
        if self.at(","):
            self.i += 1
            s = self.integer("Decimal scale", 0, p)
            self.take(")", family)
            return f"Decimal({p}, {s})"
        self.take(")", family)
        return f"Decimal({p})"

    def _decimal_n(self, family: str, top: bool) -> str:
        self.take("(", family)
        s = self.integer(f"{family} scale", 0, _DECIMAL_MAX[family])
        self.take(")", family)
        return f"{family}({s})"

    t_Decimal32 = t_Decimal64 = t_Decimal128 = t_Decimal256 = _decimal_n

    def _tz(self) -> str:
        tok = self.peek()
        tz = self.string("time zone")
        zones = _timezones()
        if not _TZ.match(tz) or (zones and tz not in zones):
            raise self.error(f"Unknown time zone {tz!r}", tok)
        return quote_string(tz)

    def t_DateTime(self, family: str, top: bool) -> str:
        if not self.at("("):
            return family
        self.take("(", family)
        tz = self._tz()
        self.take(")", family)
        return f"DateTime({tz})"

    def _precision_type(self, family: str, top: bool) -> str:
        if not self.at("("):
            return family
        self.take("(", family)
        p = self.integer(f"{family} precision", 0, 9)
        parts = [str(p)]
        if self.at(","):
            self.i += 1
            parts.append(self._tz())
        self.take(")", family)
        return f"{family}({', '.join(parts)})"

    t_DateTime64 = t_Time64 = _precision_type

    def t_Enum(self, family: str, top: bool) -> str:
        lo, hi = _ENUM_RANGE[family]
        entries: list[tuple[str, int | None]] = []

        def item() -> str:
            label = self.string(f"{family} value name")
            value = None
            if self.at("="):
                self.i += 1
                value = self.integer(f"{family} value for {label!r}", lo, hi, signed=True)
            entries.append((label, value))
            return ""

        self.args(family, item)
        if not entries:
            raise self.error(f"{family} needs at least one value: {family}('a' = 1, 'b' = 2)")
        explicit = [v for _, v in entries if v is not None]
        if explicit and len(explicit) != len(entries):
            raise self.error(f"{family}: give a number to every value or to none")
        labels = [label for label, _ in entries]
        if len(set(labels)) != len(labels) or len(set(explicit)) != len(explicit):
            raise self.error(f"{family}: names and numbers must be unique")
        if not explicit and len(entries) > hi:
            raise self.error(f"{family}: too many values")
        body = ", ".join(quote_string(label) + ("" if v is None else f" = {v}") for label, v in entries)
        return f"{family}({body})"

    t_Enum8 = t_Enum16 = t_Enum

    def _setting(self, family: str, allowed: tuple[str, ...]) -> str:
        tok = self.peek()
        assert tok is not None
        if tok.value not in allowed:
            raise self.error(f"{family}: unknown parameter {tok.value!r}; use {', '.join(allowed)}", tok)
        self.i += 1
        self.take("=", family)
        return f"{tok.value}={self.integer(tok.value, 0, 100_000)}"

    def t_Dynamic(self, family: str, top: bool) -> str:
        if not self.at("("):
            return family
        items = self.args(family, lambda: self._setting(family, ("max_types",)))
        return f"Dynamic({', '.join(items)})" if items else family

    def _json_path(self) -> str:
        tok = self.peek()
        if tok is not None and tok.kind == "qident":
            self.i += 1
            return quote_identifier(tok.value)
        parts = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "ident":
                raise self.error(f"JSON: expected a path but found {self.near(tok)}")
            parts.append(tok.value)
            self.i += 1
            if not self.at("."):
                return ".".join(parts)
            self.i += 1

    def _json_item(self) -> str:
        tok, nxt = self.peek(), self.peek(1)
        if tok is not None and tok.kind == "ident" and nxt is not None and nxt.value == "=":
            return self._setting("JSON", ("max_dynamic_paths", "max_dynamic_types"))
        if tok is not None and tok.kind == "ident" and tok.value.upper() == "SKIP":
            self.i += 1
            nxt = self.peek()
            if nxt is not None and nxt.kind == "ident" and nxt.value.upper() == "REGEXP":
                self.i += 1
                return f"SKIP REGEXP {quote_string(self.string('JSON SKIP REGEXP'))}"
            return f"SKIP {self._json_path()}"
        path = self._json_path()
        inner, _ = self.type()
        return f"{path} {inner}"

    def t_JSON(self, family: str, top: bool) -> str:
        if not self.at("("):
            return family
        items = self.args(family, self._json_item)
        return f"JSON({', '.join(items)})" if items else family

    def _literal(self, context: str) -> str:
        neg = self.at("-")
        if neg:
            self.i += 1
        tok = self.peek()
        if tok is not None and tok.kind == "number":
            self.i += 1
            return ("-" if neg else "") + tok.value
        if tok is not None and tok.kind == "string" and not neg:
            self.i += 1
            return quote_string(tok.value)
        raise self.error(f"{context}: parameters must be numbers or 'strings', found {self.near(tok)}")

    def _function(self, family: str) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or tok.kind != "ident":
            raise self.error(f"{family}: expected an aggregate function name but found {self.near(tok)}")
        self.i += 1
        text = tok.value
        if self.at("("):
            params = self.args(f"{family} function parameters", lambda: self._literal(tok.value))
            text += f"({', '.join(params)})"
        return tok.value, text

    def t_AggregateFunction(self, family: str, top: bool) -> str:
        if not top:
            raise self.error(f"{family} can only be the type of a column, not part of another type")
        self.take("(", family)
        _, fn = self._function(family)
        parts = [fn]
        while self.at(","):
            self.i += 1
            parts.append(self.type()[0])
        self.take(")", family)
        return f"{family}({', '.join(parts)})"

    def t_SimpleAggregateFunction(self, family: str, top: bool) -> str:
        if not top:
            raise self.error(f"{family} can only be the type of a column, not part of another type")
        self.take("(", family)
        start = self.peek()
        name, fn = self._function(family)
        if name not in SIMPLE_AGGREGATE_FUNCTIONS:
            raise self.error(
                f"SimpleAggregateFunction does not support {name!r}; use AggregateFunction, or one of: "
                + ", ".join(sorted(SIMPLE_AGGREGATE_FUNCTIONS)),
                start,
            )
        self.take(",", f"{family}(function, type)")
        inner, _ = self.type()
        self.take(")", family)
        return f"{family}({fn}, {inner})"


def _family_of(text: str) -> str:
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text.strip())
    return m.group() if m else ""


def parse_type_at(text: str, tokens: Sequence[Token], pos: int) -> tuple[str, int]:
    """Parse a column type starting at tokens[pos]; return (canonical type, index of the next token)."""
    parser = _Parser(text, tokens, pos)
    canonical, _ = parser.type(top=True)
    return canonical, parser.i


def normalize_type(text: str) -> str:
    """Validate a column type and return its canonical text; raises DDLError naming the problem."""
    tokens = tokenize(text or "")
    if not tokens:
        raise DDLError("Empty type", offset=0)
    for tok in tokens:
        if tok.kind in ("comment", "other"):
            raise DDLError(f"Unexpected {tok.value!r} in type {text!r}", offset=tok.start)
    try:
        canonical, end = parse_type_at(text, tokens, 0)
    except DDLError as exc:
        raise DDLError(f"Invalid type {text.strip()!r}: {exc.message}", offset=exc.offset) from None
    if end != len(tokens):
        tok = tokens[end]
        raise DDLError(
            f"Invalid type {text.strip()!r}: unexpected {text[tok.start :].strip()!r} after the type",
            offset=tok.start,
        )
    return canonical
