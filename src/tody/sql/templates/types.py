"""Typed parameters: validation of request values and rendering of values as ClickHouse literals.

Request values are strings (a repeated parameter gives a list of strings). A typed function turns
one into a plain Python value (int, float, bool, str, list); `sql_literal` renders any template
value as a ClickHouse literal that cannot escape its quotes:

- strings single-quoted, `\\` and `'` escaped, control characters escaped (`\\n`, `\\x01`, …);
- numbers unquoted (`5`, `-1.5`, `1e+20`), booleans `1`/`0`, None `NULL`; integers beyond the
  64-bit range as `toInt256('…')`/`toUInt256('…')` (ClickHouse would read them as Float64);
- Date/DateTime/DateTime64/UUID as quoted strings (`'2024-01-01 00:00:00'`), which ClickHouse
  converts when compared with a column of that type;
- lists as arrays `[1,2]` / `['a','b']`, tuples as `(1,2)`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime

from tody.engine.base import quote_string
from tody.sql.templates.errors import MAX_ITEMS, TemplateError, shorten


@dataclass(frozen=True)
class ParamSpec:
    """A parameter a template declares through a typed function, e.g. `Int32(limit, 100)`."""

    name: str
    type: str  # "Int32", "String", "Array(String)", "DateTime", …
    default: object | None = None
    required: bool = False
    description: str | None = None
    example: object | None = None
    format: str | None = None
    enum: tuple | None = None


@dataclass(frozen=True, slots=True)
class SQL:
    """A piece of SQL built by a template function from validated parts (identifiers, conditions).
    It is printed as is; nothing a request sends can become one without validation."""

    sql: str

    def __bool__(self) -> bool:
        return bool(self.sql)


@dataclass(frozen=True, slots=True)
class Undefined:
    """What a typed function called with `defined=False` returns for a missing parameter: falsy,
    dropped by `sql_and`, printed as the type's placeholder."""

    name: str | None
    type: str

    def __bool__(self) -> bool:
        return False


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class Param:
    """The first argument of a parameter-aware function: its name when written as a bare name, and
    its value (MISSING when no parameter or variable of that name exists)."""

    name: str | None
    value: object

    def is_missing(self) -> bool:
        return is_empty(self.value)

    def label(self) -> str:
        return f"Parameter '{self.name}'" if self.name else "Value"


def is_empty(value: object) -> bool:
    """Missing, None, '' or a list of empty strings: the parameter counts as not given."""
    if value is MISSING or value is None or isinstance(value, Undefined):
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, list | tuple):
        return all(isinstance(v, str) and v == "" for v in value)
    return False


def last(value: object) -> object:
    """A scalar parameter sent several times uses its last value."""
    if isinstance(value, list | tuple) and value:
        return value[-1]
    return value


# -- scalar types --------------------------------------------------------------------------------------

_INT_RANGES: dict[str, tuple[int, int]] = {}
for _bits in (8, 16, 32, 64, 128, 256):
    _INT_RANGES[f"Int{_bits}"] = (-(2 ** (_bits - 1)), 2 ** (_bits - 1) - 1)
    _INT_RANGES[f"UInt{_bits}"] = (0, 2**_bits - 1)
ALIASES = {"Int": "Int32", "Integer": "Int32"}
SCALAR_TYPES = (
    "String", "Boolean", "Date", "DateTime", "DateTime64", "Float32", "Float64", *_INT_RANGES, "UUID", "JSON",
)  # fmt: skip
PLACEHOLDERS: dict[str, object] = {
    "String": "",
    "Boolean": False,
    "Date": "1970-01-01",
    "DateTime": "1970-01-01 00:00:00",
    "DateTime64": "1970-01-01 00:00:00.000",
    "Float32": 0.0,
    "Float64": 0.0,
    "UUID": "00000000-0000-0000-0000-000000000000",
    "JSON": "{}",
    **dict.fromkeys(_INT_RANGES, 0),
}

_INT_RE = re.compile(r"[+-]?[0-9]{1,80}")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?)?"
)
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FLOAT32_MAX = 3.4028234663852886e38
_MAX_VALUE_CHARS = 1_000_000


def canonical(type_name: str) -> str:
    return ALIASES.get(type_name, type_name)


def placeholder(type_name: str) -> object:
    if type_name.startswith("Array("):
        return []
    return PLACEHOLDERS[canonical(type_name)]


class _Bad(Exception):
    """Internal: the value does not fit the type (hint optional)."""

    def __init__(self, hint: str = ""):
        super().__init__(hint)
        self.hint = hint


def convert(type_name: str, value: object, label: str) -> object:
    """Validate one value (already known to be present) against a scalar type; return it typed."""
    type_name = canonical(type_name)
    scalar = last(value)
    try:
        return _convert(type_name, scalar)
    except _Bad as bad:
        hint = f": {bad.hint}" if bad.hint else ""
        raise TemplateError(f"{label} must be {type_name} (got {shorten(scalar)}){hint}") from None


def _convert(type_name: str, value: object) -> object:
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        raise _Bad(f"values are limited to {_MAX_VALUE_CHARS} characters")
    if type_name in _INT_RANGES:
        return _to_int(type_name, value)
    if type_name in ("Float32", "Float64"):
        return _to_float(type_name, value)
    if type_name == "String":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _Bad()
    if type_name == "Boolean":
        return _to_bool(value)
    if type_name == "Date":
        return _to_date(value)
    if type_name in ("DateTime", "DateTime64"):
        return _to_datetime(type_name, value)
    if type_name == "UUID":
        if isinstance(value, str) and _UUID_RE.fullmatch(value.strip()):
            return value.strip().lower()
        raise _Bad()
    if type_name == "JSON":
        return _to_json(value)
    raise TemplateError(f"Unknown parameter type '{type_name}'")


def _to_int(type_name: str, value: object) -> int:
    if isinstance(value, bool):
        raise _Bad()
    if isinstance(value, float):
        if not value.is_integer():
            raise _Bad()
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INT_RE.fullmatch(text):
            raise _Bad()
        value = int(text)
    if not isinstance(value, int):
        raise _Bad()
    low, high = _INT_RANGES[type_name]
    if not low <= value <= high:
        raise _Bad(f"out of range, {type_name} goes from {low} to {high}")
    return value


def _to_float(type_name: str, value: object) -> float:
    if isinstance(value, bool):
        raise _Bad()
    if isinstance(value, str):
        text = value.strip()
        if not _FLOAT_RE.fullmatch(text):
            raise _Bad()
        value = float(text)
    if isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:
            raise _Bad("out of range") from None
    if not isinstance(value, float):
        raise _Bad()
    if not math.isfinite(value) or (type_name == "Float32" and abs(value) > _FLOAT32_MAX):
        raise _Bad("out of range")
    return value


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    raise _Bad("use true, false, 1 or 0")


def _to_date(value: object) -> str:
    if isinstance(value, datetime):
        raise _Bad("expected YYYY-MM-DD")
    if isinstance(value, date):
        return value.isoformat()
    match = _DATE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise _Bad("expected YYYY-MM-DD")
    try:
        return date(*map(int, match.groups())).isoformat()
    except ValueError:
        raise _Bad("not a valid date") from None


def _to_datetime(type_name: str, value: object) -> str:
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ")
    elif isinstance(value, date):
        value = value.isoformat()
    wanted = "YYYY-MM-DD HH:MM:SS" + ("[.fff]" if type_name == "DateTime64" else "")
    match = _DATETIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match or (match.group(7) and type_name == "DateTime"):
        raise _Bad(f"expected {wanted}")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        raise _Bad("not a valid date and time") from None
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if type_name == "DateTime64":
        text += fraction or ".000"
    return text


def _to_json(value: object) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            raise _Bad("not valid JSON") from None
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        raise _Bad("not valid JSON") from None


# -- arrays --------------------------------------------------------------------------------------------


def array_items(value: object) -> list[object]:
    """Repeated parameters give several values; one value is split on commas."""
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        items: list[object] = list(value.split(",")) if value else []
    elif isinstance(value, list | tuple | range):
        items = list(value)
    else:
        items = [value]
    if len(items) > MAX_ITEMS:
        raise TemplateError(f"Arrays are limited to {MAX_ITEMS} items")
    return items


def convert_array(element_type: str, value: object, label: str) -> list[object]:
    element_type = canonical(element_type)
    out = []
    for item in array_items(value):
        if element_type != "String" and isinstance(item, str):
            item = item.strip()
        try:
            out.append(_convert(element_type, item))
        except _Bad as bad:
            hint = f": {bad.hint}" if bad.hint else ""
            raise TemplateError(
                f"{label} must be Array({element_type}) (element {shorten(item)} is not {element_type}){hint}"
            ) from None
    return out


# -- literals ------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def string_literal(value: str) -> str:
    """quote_string, plus every remaining control character as a \\xHH escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02X}", quote_string(value))


class Budget:
    """Characters left for the output; rendering a value stops as soon as it would cross it."""

    def __init__(self, remaining: int):
        self.remaining = remaining

    def take(self, text: str) -> str:
        self.remaining -= len(text)
        if self.remaining < 0:
            raise OutputTooLarge()
        return text


class OutputTooLarge(Exception):
    pass


def sql_literal(value: object, budget: Budget) -> str:
    """Render a template value as SQL. Raises TemplateError for values that have no literal form."""
    if isinstance(value, SQL):
        return budget.take(value.sql)
    if isinstance(value, Undefined):
        return sql_literal(placeholder(value.type), budget)
    if value is None:
        return budget.take("NULL")
    if isinstance(value, bool):
        return budget.take("1" if value else "0")
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return budget.take(str(value))
        # ClickHouse reads wider integer literals as Float64: keep them exact.
        return budget.take(f"{'toInt256' if value < 0 else 'toUInt256'}('{value}')")
    if isinstance(value, float):
        if math.isnan(value):
            return budget.take("nan")
        if math.isinf(value):
            return budget.take("inf" if value > 0 else "-inf")
        return budget.take(repr(value))
    if isinstance(value, str):
        budget.take(value)  # cheap check before building the escaped copy
        budget.remaining += len(value)
        return budget.take(string_literal(value))
    if isinstance(value, list | range):
        return "[" + ",".join(sql_literal(v, budget) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ",".join(sql_literal(v, budget) for v in value)
        return f"({inner})" if len(value) > 1 else f"tuple({inner})"
    raise TemplateError(f"{a_type(value, True)} cannot be printed as SQL")


def a_type(value: object, capital: bool = False) -> str:
    """The kind of a value with its article, for messages: "an integer", "a string", "None"."""
    name = type_name_of(value)
    if name != "None":
        name = ("an " if name[0] in "aeiou" else "a ") + name
    return name[0].upper() + name[1:] if capital else name


def type_name_of(value: object) -> str:
    if isinstance(value, SQL):
        return "SQL fragment"
    if isinstance(value, Undefined):
        return "undefined parameter"
    return {
        type(None): "None",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        tuple: "tuple",
        dict: "dict",
        range: "range",
    }.get(type(value), type(value).__name__)
