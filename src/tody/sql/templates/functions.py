"""The template functions: the only callables a template can reach, listed once in `FUNCTIONS`.

A function gets already-evaluated arguments. "Parameter-aware" functions (typed functions,
`defined`, `column`, …) get their first argument as a `Param`: when it is written as a bare name
they see the name and whether a value exists, so a missing parameter is not an error for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tody.sql.templates.errors import (
    MAX_ITEMS,
    MAX_OUTPUT_CHARS,
    MAX_STRING_CHARS,
    TemplateError,
    TemplateHTTPError,
    shorten,
)
from tody.sql.templates.types import (
    SCALAR_TYPES,
    SQL,
    Budget,
    Param,
    Undefined,
    a_type,
    array_items,
    canonical,
    convert,
    convert_array,
    is_empty,
    last,
    placeholder,
    sql_literal,
)

Fn = Callable[[list, dict], object]


@dataclass(frozen=True)
class Builtin:
    fn: Fn
    param_first: bool = False  # the first positional argument arrives as a Param


_REQUIRED = object()
TYPED_SIGNATURE = ("param", "default", "description", "required", "example", "format", "enum", "defined")


def bind(fname: str, args: list, kwargs: dict, names: tuple[str, ...], defaults: dict[str, object]) -> dict:
    """Match arguments to parameter names, Python-style, with clear errors."""
    if len(args) > len(names):
        raise TemplateError(f"{fname}() takes at most {len(names)} arguments ({len(args)} given)")
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise TemplateError(f"{fname}() got an unexpected keyword argument '{key}'")
        if key in bound:
            raise TemplateError(f"{fname}() got multiple values for argument '{key}'")
        bound[key] = value
    for name in names:
        if name not in bound:
            if defaults.get(name) is _REQUIRED:
                raise TemplateError(f"{fname}() is missing its argument '{name}'")
            bound[name] = defaults.get(name)
    return bound


# -- typed parameters ----------------------------------------------------------------------------------


def typed_value(type_name: str, param: Param, a: dict, element_type: str | None = None) -> object:
    label = param.label()
    full = f"Array({element_type})" if element_type else canonical(type_name)

    def conv(value: object) -> object:
        if element_type:
            return convert_array(element_type, value, label)
        return convert(type_name, value, label)

    if param.is_missing():
        if a["required"]:
            raise TemplateError(f"{label} is required")
        if not is_empty(a["default"]):
            value = conv(a["default"])
        elif a["defined"] is False:
            return Undefined(param.name, full)
        else:
            return placeholder(full)
    else:
        value = conv(param.value)
    if a["enum"] is not None:
        _check_enum(full, element_type or canonical(type_name), label, value, a["enum"])
    return value


def _check_enum(full: str, scalar: str, label: str, value: object, enum: object) -> None:
    if not isinstance(enum, list | tuple):
        raise TemplateError(f"enum of {label} must be a list of values")
    allowed = [convert(scalar, item, f"enum value of {label}") for item in enum]
    for item in value if isinstance(value, list) else [value]:
        if item not in allowed:
            shown = ", ".join(shorten(v, 40) for v in allowed[:20])
            raise TemplateError(f"{label} must be one of {shown} (got {shorten(item)})")


def _typed(type_name: str) -> Builtin:
    def fn(args: list, kwargs: dict) -> object:
        a = bind(type_name, args, kwargs, TYPED_SIGNATURE, {"param": _REQUIRED, "defined": True})
        return typed_value(type_name, a["param"], a)

    return Builtin(fn, param_first=True)


def array_element_type(args: list, kwargs: dict) -> tuple[str, list, dict]:
    """`Array(x, 'Int32', …)`: the second positional argument is the element type when it names one
    (or `type=` is given); otherwise it is the default (`Array(colors, 'black')`, elements String)."""
    args, kwargs = list(args), dict(kwargs)
    element_type = kwargs.pop("type", None)
    if (
        element_type is None
        and len(args) > 1
        and isinstance(args[1], str)
        and canonical(args[1]) in SCALAR_TYPES
    ):
        element_type = args.pop(1)
    if element_type is None:
        element_type = "String"
    if not isinstance(element_type, str) or canonical(element_type) not in SCALAR_TYPES:
        raise TemplateError(f"Array() element type must be one of {', '.join(SCALAR_TYPES)}")
    return canonical(element_type), args, kwargs


def _array(args: list, kwargs: dict) -> object:
    element_type, args, kwargs = array_element_type(args, kwargs)
    a = bind("Array", args, kwargs, TYPED_SIGNATURE, {"param": _REQUIRED, "defined": True})
    return typed_value("Array", a["param"], a, element_type)


# -- identifiers and conditions ------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,2}")
_SYMBOL_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f`\\]")


def identifier_sql(value: object, label: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value.strip()):
        raise TemplateError(f"{label} must be a column name (got {shorten(value)})")
    return ".".join(f"`{part}`" for part in value.strip().split("."))


def _value_or_default(fname: str, param: Param, default: object) -> object:
    value = default if param.is_missing() else param.value
    if is_empty(value):
        raise TemplateError(f"{fname}(): {param.label().lower()} is missing and there is no default")
    return value


def _column(args: list, kwargs: dict) -> SQL:
    a = bind("column", args, kwargs, ("param", "default"), {"param": _REQUIRED})
    value = last(_value_or_default("column", a["param"], a["default"]))
    return SQL(identifier_sql(value, a["param"].label()))


def _columns(args: list, kwargs: dict) -> SQL:
    a = bind("columns", args, kwargs, ("param", "default"), {"param": _REQUIRED})
    value = _value_or_default("columns", a["param"], a["default"])
    items = [v for v in array_items(value) if not (isinstance(v, str) and not v.strip())]
    if not items:
        raise TemplateError(f"columns(): {a['param'].label().lower()} names no column")
    return SQL(", ".join(identifier_sql(v, a["param"].label()) for v in items))


def _symbol(args: list, kwargs: dict) -> SQL:
    a = bind("symbol", args, kwargs, ("param", "default"), {"param": _REQUIRED})
    value = last(_value_or_default("symbol", a["param"], a["default"]))
    if not isinstance(value, str) or len(value) > 256 or _SYMBOL_FORBIDDEN.search(value):
        raise TemplateError(
            f"{a['param'].label()} must be a name without backticks, backslashes or control characters "
            f"(got {shorten(value)})"
        )
    return SQL(f"`{value}`")


SQL_AND_OPERATORS = {
    "eq": "=", "neq": "!=", "ne": "!=", "gt": ">", "gte": ">=", "ge": ">=", "lt": "<", "lte": "<=",
    "le": "<=", "in": "IN", "not_in": "NOT IN", "like": "LIKE", "not_like": "NOT LIKE",
    "ilike": "ILIKE", "not_ilike": "NOT ILIKE",
}  # fmt: skip


def _sql_and(args: list, kwargs: dict) -> SQL:
    if args:
        raise TemplateError(
            "sql_and() takes keyword arguments only, e.g. sql_and(country__in=Array(c, 'String'))"
        )
    parts = []
    budget = Budget(MAX_OUTPUT_CHARS)
    for key, value in kwargs.items():
        column, sep, op = key.rpartition("__")
        if not sep:
            column, op = key, "eq"
        if op not in SQL_AND_OPERATORS:
            known = ", ".join(f"__{o}" for o in SQL_AND_OPERATORS)
            raise TemplateError(f"sql_and(): unknown operator '__{op}' in '{key}' (use one of {known})")
        if value is None or isinstance(value, Undefined):
            continue
        if op in ("in", "not_in") and not isinstance(value, list | tuple | range):
            value = [value]
        elif op in ("in", "not_in"):
            value = list(value)
        rendered = sql_literal(value, budget)
        parts.append(
            f"{identifier_sql(column, f'sql_and() column {column!r}')} {SQL_AND_OPERATORS[op]} {rendered}"
        )
    return SQL(" AND ".join(parts) if parts else "1")


def _defined(args: list, kwargs: dict) -> bool:
    return not args[0].is_missing()


# -- strings and arrays --------------------------------------------------------------------------------


def _split_to_array(args: list, kwargs: dict) -> list:
    a = bind("split_to_array", args, kwargs, ("param", "default", "separator"), {"param": _REQUIRED})
    param: Param = a["param"]
    value = a["default"] if param.is_missing() else param.value
    separator = "," if a["separator"] is None else a["separator"]
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = [v.strip() if isinstance(v, str) else v for v in value]
        return [v for v in items if v != ""]
    if not isinstance(value, str) or not isinstance(separator, str) or not separator:
        raise TemplateError("split_to_array() takes a string and a non-empty separator string")
    if value.count(separator) >= MAX_ITEMS:
        raise TemplateError(f"split_to_array(): lists are limited to {MAX_ITEMS} items")
    return [part.strip() for part in value.split(separator) if part.strip()]


def _enum_with_default(args: list, kwargs: dict) -> object:
    a = bind("enum_with_default", args, kwargs, ("param", "default", "enum"), {"param": _REQUIRED})
    param: Param = a["param"]
    value = a["default"] if param.is_missing() else last(param.value)
    enum = a["enum"]
    if enum is not None:
        if not isinstance(enum, list | tuple):
            raise TemplateError("enum_with_default(): enum must be a list of values")
        if value not in enum:
            value = a["default"]
    return value


def _sql_unescape(args: list, kwargs: dict) -> str:
    a = bind("sql_unescape", args, kwargs, ("value", "chars"), {"value": _REQUIRED})
    value, chars = a["value"], "%" if a["chars"] is None else a["chars"]
    if not isinstance(value, str) or not isinstance(chars, str):
        raise TemplateError("sql_unescape() takes a string value and a string of characters")
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and value[i + 1 : i + 2] and value[i + 1] in chars:
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


# -- dates ---------------------------------------------------------------------------------------------

_DATE_PREFIX = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?)?"
)


def _day_diff(args: list, kwargs: dict) -> int:
    a = bind("day_diff", args, kwargs, ("d1", "d2"), {"d1": _REQUIRED, "d2": _REQUIRED})
    days = []
    for key in ("d1", "d2"):
        value = a[key]
        match = _DATE_PREFIX.fullmatch(value.strip()) if isinstance(value, str) else None
        try:
            if match is None:
                raise ValueError
            days.append(datetime(*map(int, match.groups())).toordinal())
        except ValueError:
            raise TemplateError(f"day_diff(): {shorten(value)} is not a date (YYYY-MM-DD)") from None
    return abs(days[1] - days[0])


def _parse_date(
    fname: str, value: object, formats: tuple[object, ...], none_if_error: bool
) -> datetime | None:
    if isinstance(value, str) and len(value) <= 100:
        for fmt in formats:
            if not fmt:
                continue
            if not isinstance(fmt, str):
                raise TemplateError(f"{fname}(): date formats must be strings")
            try:
                moment = datetime.strptime(value, fmt)
            except ValueError:
                continue
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
            return moment
    if none_if_error:
        return None
    raise TemplateError(f"{fname}(): {shorten(value)} does not match the date format {shorten(formats[0])}")


def _date_diff(fname: str, unit: int) -> Builtin:
    names = ("d1", "d2", "date_format", "backup_date_format", "none_if_error")

    def fn(args: list, kwargs: dict) -> object:
        a = bind(fname, args, kwargs, names, {"d1": _REQUIRED, "d2": _REQUIRED})
        formats = (a["date_format"] or "%Y-%m-%d %H:%M:%S", a["backup_date_format"])
        first = _parse_date(fname, a["d1"], formats, bool(a["none_if_error"]))
        second = _parse_date(fname, a["d2"], formats, bool(a["none_if_error"]))
        if first is None or second is None:
            return None
        diff = abs((second - first).total_seconds()) / unit
        return int(diff) if diff.is_integer() else diff

    return Builtin(fn)


# -- errors and secrets --------------------------------------------------------------------------------


def _error(args: list, kwargs: dict) -> object:
    a = bind("error", args, kwargs, ("message", "code"), {"message": _REQUIRED})
    message = a["message"] if isinstance(a["message"], str) else str(a["message"])
    raise TemplateHTTPError(message[:MAX_STRING_CHARS], 400 if a["code"] is None else a["code"])


def _custom_error(args: list, kwargs: dict) -> object:
    a = bind("custom_error", args, kwargs, ("error", "code"), {"error": _REQUIRED})
    body = a["error"]
    if isinstance(body, str):
        body = {"error": body}
    if not isinstance(body, dict):
        raise TemplateError("custom_error() takes a dict such as {'error': 'message', 'code': 400}")
    message = body.get("error", "error")
    code = a["code"] if a["code"] is not None else body.get("code", 400)
    extra = {k: v for k, v in body.items() if isinstance(k, str) and k not in ("error", "code")}
    extra = {k: v for k, v in extra.items() if v is None or isinstance(v, str | int | float | bool)}
    raise TemplateHTTPError(str(message)[:MAX_STRING_CHARS], code, extra)


def _unsupported_secret(name: str) -> Builtin:
    def fn(args: list, kwargs: dict) -> object:
        raise TemplateError(f"{name}(): secrets are not supported yet")

    return Builtin(fn)


# -- general helpers -----------------------------------------------------------------------------------


def _number(fname: str, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TemplateError(f"{fname}() takes a number (got {a_type(value)})")
    return value


def _len(args: list, kwargs: dict) -> int:
    a = bind("len", args, kwargs, ("value",), {"value": _REQUIRED})
    value = a["value"]
    if isinstance(value, SQL):
        value = value.sql
    if not isinstance(value, str | list | tuple | dict | range):
        raise TemplateError(f"len() takes a string or a list (got {a_type(value)})")
    return len(value)


def _extreme(fname: str, pick: Callable) -> Builtin:
    def fn(args: list, kwargs: dict) -> object:
        if kwargs:
            raise TemplateError(f"{fname}() takes no keyword arguments")
        items = args
        if len(args) == 1 and isinstance(args[0], list | tuple | range):
            items = list(args[0])
        if not items:
            raise TemplateError(f"{fname}() needs at least one value")
        try:
            return pick(items)
        except TypeError:
            raise TemplateError(f"{fname}() values cannot be compared with each other") from None

    return Builtin(fn)


def _abs(args: list, kwargs: dict) -> object:
    return abs(_number("abs", bind("abs", args, kwargs, ("value",), {"value": _REQUIRED})["value"]))


def _round(args: list, kwargs: dict) -> object:
    a = bind("round", args, kwargs, ("value", "ndigits"), {"value": _REQUIRED})
    value, ndigits = _number("round", a["value"]), a["ndigits"]
    if ndigits is None:
        return round(value) if math.isfinite(value) else value
    if isinstance(ndigits, bool) or not isinstance(ndigits, int) or not -20 <= ndigits <= 20:
        raise TemplateError("round() takes a number of digits between -20 and 20")
    return round(value, ndigits)


def _range(args: list, kwargs: dict) -> range:
    if kwargs or not 1 <= len(args) <= 3 or any(isinstance(v, bool) or not isinstance(v, int) for v in args):
        raise TemplateError("range() takes one to three integers")
    if len(args) == 3 and args[2] == 0:
        raise TemplateError("range() step must not be zero")
    try:
        result = range(*args)
        size = len(result)
    except OverflowError:
        size = MAX_ITEMS + 1
    if size > MAX_ITEMS:
        raise TemplateError(f"range() is limited to {MAX_ITEMS} values")
    return result


def _enumerate(args: list, kwargs: dict) -> list:
    a = bind("enumerate", args, kwargs, ("value", "start"), {"value": _REQUIRED})
    value, start = a["value"], 0 if a["start"] is None else a["start"]
    if not isinstance(value, str | list | tuple | range | dict) or len(value) > MAX_ITEMS:
        raise TemplateError(f"enumerate() takes a list of at most {MAX_ITEMS} values")
    if isinstance(start, bool) or not isinstance(start, int) or abs(start) > 2**63:
        raise TemplateError("enumerate() start must be an integer")
    return list(enumerate(value, start))


def _int(args: list, kwargs: dict) -> int:
    value = bind("int", args, kwargs, ("value",), {"value": _REQUIRED})["value"]
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,80}", text):
            raise TemplateError(f"int() cannot convert {shorten(value)}")
        return int(text)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateError(f"int() cannot convert {value!r}")
        return int(value)
    if isinstance(value, int):
        return int(value)
    raise TemplateError(f"int() cannot convert {a_type(value)}")


def _float(args: list, kwargs: dict) -> float:
    value = bind("float", args, kwargs, ("value",), {"value": _REQUIRED})["value"]
    if isinstance(value, str):
        return convert("Float64", value, "float() value")  # type: ignore[return-value]
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise TemplateError("float() value is out of range") from None
    raise TemplateError(f"float() cannot convert {a_type(value)}")


def _str(args: list, kwargs: dict) -> str:
    value = bind("str", args, kwargs, ("value",), {"value": _REQUIRED})["value"]
    if value is None or isinstance(value, str | int | float | bool):
        return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    raise TemplateError(f"str() takes a string, number or boolean (got {a_type(value)})")


def _bool(args: list, kwargs: dict) -> bool:
    return bool(bind("bool", args, kwargs, ("value",), {"value": _REQUIRED})["value"])


# -- the allow-list ------------------------------------------------------------------------------------

FUNCTIONS: dict[str, Builtin] = {
    **{name: _typed(name) for name in (*SCALAR_TYPES, "Int", "Integer")},
    "Array": Builtin(_array, param_first=True),
    "defined": Builtin(_defined, param_first=True),
    "column": Builtin(_column, param_first=True),
    "columns": Builtin(_columns, param_first=True),
    "symbol": Builtin(_symbol, param_first=True),
    "sql_and": Builtin(_sql_and),
    "split_to_array": Builtin(_split_to_array, param_first=True),
    "enum_with_default": Builtin(_enum_with_default, param_first=True),
    "sql_unescape": Builtin(_sql_unescape),
    "day_diff": Builtin(_day_diff),
    "date_diff_in_seconds": _date_diff("date_diff_in_seconds", 1),
    "date_diff_in_minutes": _date_diff("date_diff_in_minutes", 60),
    "date_diff_in_hours": _date_diff("date_diff_in_hours", 3600),
    "date_diff_in_days": _date_diff("date_diff_in_days", 86400),
    "error": Builtin(_error),
    "custom_error": Builtin(_custom_error),
    "tb_secret": _unsupported_secret("tb_secret"),
    "tb_var": _unsupported_secret("tb_var"),
    "len": Builtin(_len),
    "max": _extreme("max", max),
    "min": _extreme("min", min),
    "abs": Builtin(_abs),
    "round": Builtin(_round),
    "range": Builtin(_range),
    "enumerate": Builtin(_enumerate),
    "int": Builtin(_int),
    "float": Builtin(_float),
    "str": Builtin(_str),
    "bool": Builtin(_bool),
}
TYPED_FUNCTIONS = frozenset((*SCALAR_TYPES, "Int", "Integer", "Array"))
