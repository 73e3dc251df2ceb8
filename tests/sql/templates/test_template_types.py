"""Typed parameter functions: validation, boundaries, defaults, required, missing values, arrays,
and the typed Python values they give outside `{{ }}`."""

from __future__ import annotations

import pytest

from tody.sql.templates import TemplateError, render

I128, I256 = 2**127, 2**255
U64, U128, U256 = 2**64, 2**128, 2**256


def wide(n: int) -> str:
    """Integers beyond 64 bits render through toInt256/toUInt256 so ClickHouse keeps them exact."""
    return f"toInt256('{n}')" if n < 0 else f"toUInt256('{n}')"


def r(body: str, values: dict | None = None, **kwargs) -> str:
    return render("%\n" + body, values or {}, **kwargs)


# (type, request value, rendered literal)
VALID = [
    ("String", "abc", "'abc'"),
    ("String", "it's", "'it\\'s'"),
    ("String", " padded ", "' padded '"),
    ("Int8", "-128", "-128"),
    ("Int8", "127", "127"),
    ("Int8", " 5 ", "5"),
    ("Int8", "+5", "5"),
    ("Int8", "007", "7"),
    ("UInt8", "0", "0"),
    ("UInt8", "255", "255"),
    ("Int16", "-32768", "-32768"),
    ("Int16", "32767", "32767"),
    ("UInt16", "65535", "65535"),
    ("Int32", "-2147483648", "-2147483648"),
    ("Int32", "2147483647", "2147483647"),
    ("UInt32", "4294967295", "4294967295"),
    ("Int64", "-9223372036854775808", "-9223372036854775808"),
    ("Int64", "9223372036854775807", "9223372036854775807"),
    ("UInt64", str(U64 - 1), str(U64 - 1)),
    ("Int128", "-9223372036854775809", wide(-(2**63) - 1)),
    ("UInt128", str(U64), wide(U64)),
    ("Int128", str(-I128), wide(-I128)),
    ("Int128", str(I128 - 1), wide(I128 - 1)),
    ("UInt128", str(U128 - 1), wide(U128 - 1)),
    ("Int256", str(-I256), wide(-I256)),
    ("Int256", str(I256 - 1), wide(I256 - 1)),
    ("UInt256", str(U256 - 1), wide(U256 - 1)),
    ("Int", "2147483647", "2147483647"),
    ("Integer", "-2147483648", "-2147483648"),
    ("Float32", "1.5", "1.5"),
    ("Float32", "-0.25", "-0.25"),
    ("Float32", "3", "3.0"),
    ("Float32", "1e38", "1e+38"),
    ("Float64", "1e308", "1e+308"),
    ("Float64", ".5", "0.5"),
    ("Float64", "-2.5E-3", "-0.0025"),
    ("Boolean", "true", "1"),
    ("Boolean", "True", "1"),
    ("Boolean", "TRUE", "1"),
    ("Boolean", "1", "1"),
    ("Boolean", "false", "0"),
    ("Boolean", "False", "0"),
    ("Boolean", "0", "0"),
    ("Date", "2024-01-01", "'2024-01-01'"),
    ("Date", "2024-02-29", "'2024-02-29'"),
    ("DateTime", "2024-01-01 10:20:30", "'2024-01-01 10:20:30'"),
    ("DateTime", "2024-01-01T10:20:30", "'2024-01-01 10:20:30'"),
    ("DateTime", "2024-01-01", "'2024-01-01 00:00:00'"),
    ("DateTime64", "2024-01-01 10:20:30.123", "'2024-01-01 10:20:30.123'"),
    ("DateTime64", "2024-01-01T10:20:30.123456789", "'2024-01-01 10:20:30.123456789'"),
    ("DateTime64", "2024-01-01 10:20:30", "'2024-01-01 10:20:30.000'"),
    ("DateTime64", "2024-01-01", "'2024-01-01 00:00:00.000'"),
    ("UUID", "123e4567-e89b-12d3-a456-426614174000", "'123e4567-e89b-12d3-a456-426614174000'"),
    ("UUID", "123E4567-E89B-12D3-A456-426614174000", "'123e4567-e89b-12d3-a456-426614174000'"),
    ("JSON", '{"a": [1, 2]}', "'{\"a\": [1, 2]}'"),
]

# (type, request value)
INVALID = [
    ("Int8", "128"),
    ("Int8", "-129"),
    ("Int8", "abc"),
    ("Int8", "5.0"),
    ("Int8", "1e3"),
    ("Int8", "0x10"),
    ("Int8", "1_0"),
    ("Int8", "1 OR 1=1"),
    ("UInt8", "-1"),
    ("UInt8", "256"),
    ("Int16", "32768"),
    ("UInt16", "65536"),
    ("Int32", "2147483648"),
    ("UInt32", "4294967296"),
    ("Int64", "9223372036854775808"),
    ("UInt64", str(U64)),
    ("Int128", str(I128)),
    ("UInt128", str(U128)),
    ("Int256", str(I256)),
    ("Int256", str(-I256 - 1)),
    ("UInt256", str(U256)),
    ("UInt256", "9" * 200),
    ("Int", "2147483648"),
    ("Integer", "x"),
    ("Float32", "1e39"),
    ("Float32", "abc"),
    ("Float64", "nan"),
    ("Float64", "inf"),
    ("Float64", "1e309"),
    ("Float64", "1,5"),
    ("Float64", "1_000.0"),
    ("Boolean", "yes"),
    ("Boolean", "2"),
    ("Date", "2024-02-30"),
    ("Date", "2023-02-29"),
    ("Date", "2024-13-01"),
    ("Date", "20240101"),
    ("Date", "2024-1-1"),
    ("Date", "2024-01-01 00:00:00"),
    ("Date", "2024-01-01' OR '1'='1"),
    ("DateTime", "2024-01-01 25:00:00"),
    ("DateTime", "2024-01-01 10:20"),
    ("DateTime", "2024-01-01 10:20:30.123"),
    ("DateTime", "2024-01-01 10:20:30Z"),
    ("DateTime", "now()"),
    ("DateTime64", "2024-01-01 10:20:30.1234567890"),
    ("DateTime64", "2024-01-01 10:20:61.1"),
    ("UUID", "not-a-uuid"),
    ("UUID", "123e4567e89b12d3a456426614174000"),
    ("UUID", "123e4567-e89b-12d3-a456-42661417400g"),
    ("JSON", "{nope"),
]


@pytest.mark.parametrize(("type_name", "value", "expected"), VALID)
def test_valid_values(type_name, value, expected):
    assert r(f"{{{{ {type_name}(p) }}}}", {"p": value}) == expected


@pytest.mark.parametrize(("type_name", "value"), INVALID)
def test_invalid_values_name_the_parameter_and_the_type(type_name, value):
    with pytest.raises(TemplateError) as info:
        r(f"{{{{ {type_name}(p) }}}}", {"p": value})
    expected_type = "Int32" if type_name in ("Int", "Integer") else type_name
    assert str(info.value).startswith(f"Parameter 'p' must be {expected_type} (got ")


def test_error_message_format():
    with pytest.raises(TemplateError) as info:
        r("LIMIT {{ Int32(limit, 10) }}", {"limit": "abc"})
    assert str(info.value) == "Parameter 'limit' must be Int32 (got 'abc')"
    with pytest.raises(TemplateError, match=r"Int8 \(got '128'\): out of range, Int8 goes from -128 to 127"):
        r("{{ Int8(x) }}", {"x": "128"})


PLACEHOLDERS = [
    ("String", "''"),
    ("Boolean", "0"),
    ("Int8", "0"),
    ("UInt256", "0"),
    ("Int", "0"),
    ("Float32", "0.0"),
    ("Float64", "0.0"),
    ("Date", "'1970-01-01'"),
    ("DateTime", "'1970-01-01 00:00:00'"),
    ("DateTime64", "'1970-01-01 00:00:00.000'"),
    ("UUID", "'00000000-0000-0000-0000-000000000000'"),
    ("JSON", "'{}'"),
]


@pytest.mark.parametrize(("type_name", "expected"), PLACEHOLDERS)
def test_missing_optional_parameter_without_default_renders_a_neutral_value(type_name, expected):
    assert r(f"{{{{ {type_name}(p) }}}}") == expected
    assert r(f"{{{{ {type_name}(p) }}}}", {"p": ""}) == expected
    assert r(f"{{{{ {type_name}(p, defined=False) }}}}") == expected
    assert r("{{ Array(p, 'Int32') }}") == "[]"


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("{{ Int32(x, 10) }}", {}, "10"),
        ("{{ Int32(x, 10) }}", {"x": ""}, "10"),
        ("{{ Int32(x, 10) }}", {"x": "3"}, "3"),
        ("{{ Int32(x, default=10) }}", {}, "10"),
        ("{{ Int32(x, -1) }}", {}, "-1"),
        ("{{ String(x, 'def') }}", {}, "'def'"),
        ("{{ String(x, 5) }}", {}, "'5'"),
        ("{{ Float64(x, 2) }}", {}, "2.0"),
        ("{{ Boolean(x, True) }}", {}, "1"),
        ("{{ Boolean(x, 'false') }}", {}, "0"),
        ("{{ Date(x, '2024-01-01') }}", {}, "'2024-01-01'"),
        ("{{ DateTime(x, '2024-01-01 00:00:00') }}", {}, "'2024-01-01 00:00:00'"),
        ("{{ Int32(x, 10, description='rows', required=False, example=5, format='int') }}", {}, "10"),
        ("{{ Int32(x, 10, 'rows') }}", {"x": "2"}, "2"),
        ("{{ Int32(x) }}", {"x": ["1", "2"]}, "2"),
        ("{{ String(x, 'a', enum=['a', 'b']) }}", {"x": "b"}, "'b'"),
        ("{{ String(x, 'a', enum=['a', 'b']) }}", {}, "'a'"),
        ("{{ Int32(x, enum=[1, 2]) }}", {"x": "2"}, "2"),
        ("{{ Int32(x, 5, defined=False) }}", {}, "5"),
        ("{{ Int32(x, required=True) }}", {"x": "4"}, "4"),
        ("{% set y = 7 %}{{ Int32(y) }}", {}, "7"),
        ("{{ Int32(x) + 1 }}", {"x": "5"}, "6"),
        ("{{ String(x) + '!' }}", {"x": "hi"}, "'hi!'"),
    ],
)
def test_defaults_and_options(body, values, expected):
    assert r(body, values) == expected


def test_invalid_default_is_reported():
    with pytest.raises(TemplateError, match="Parameter 'x' must be Int32"):
        r("{{ Int32(x, 'ten') }}")


def test_required():
    for body in (
        "{{ Int32(x, required=True) }}",
        "{{ String(x, 'd', required=True) }}",
        "{{ Array(x, required=True) }}",
    ):
        for values in ({}, {"x": ""}, {"x": [""]}):
            with pytest.raises(TemplateError) as info:
                r(body, values)
            assert str(info.value) == "Parameter 'x' is required"


def test_enum_refuses_other_values():
    with pytest.raises(TemplateError) as info:
        r("{{ String(x, 'a', enum=['a', 'b']) }}", {"x": "c"})
    assert str(info.value) == "Parameter 'x' must be one of 'a', 'b' (got 'c')"
    with pytest.raises(TemplateError, match="must be one of"):
        r("{{ Array(x, 'Int32', enum=[1, 2]) }}", {"x": "1,3"})


def test_typed_functions_give_python_values_outside_output():
    assert r("{% if Int32(x, 0) > 5 %}big{% end %}", {"x": "6"}) == "big"
    assert r("{% if Int32(x, 0) > 5 %}big{% end %}", {"x": "05"}) == ""
    assert r("{% if Boolean(f) %}on{% else %}off{% end %}", {"f": "false"}) == "off"
    assert r("{% if Boolean(f) %}on{% else %}off{% end %}", {"f": "TRUE"}) == "on"
    assert r("{% if Date(d) >= '2024-01-01' %}new{% end %}", {"d": "2024-06-01"}) == "new"
    assert r("{% if String(s) == 'a' %}A{% end %}", {"s": "a"}) == "A"
    assert r("{% if 'b' in Array(a) %}has b{% end %}", {"a": "a,b"}) == "has b"
    assert r("{% if Float64(x) < 0.5 %}low{% end %}", {"x": "0.25"}) == "low"
    assert r("{% if Int32(x, defined=False) %}set{% else %}unset{% end %}") == "unset"
    assert r("{{ len(Array(a, 'Int32')) }}", {"a": "1,2,3"}) == "3"
    with pytest.raises(TemplateError, match="undefined parameter cannot be compared"):
        r("{% if Int32(x, defined=False) > 1 %}{% end %}")


ARRAYS = [
    ("{{ Array(x, 'Int32') }}", {"x": "1,2,3"}, "[1,2,3]"),
    ("{{ Array(x, 'Int32') }}", {"x": ["1", "2"]}, "[1,2]"),
    ("{{ Array(x, 'Int32') }}", {"x": ["1,2"]}, "[1,2]"),
    ("{{ Array(x, 'Int32') }}", {"x": " 1, 2 "}, "[1,2]"),
    ("{{ Array(x) }}", {"x": "a,b"}, "['a','b']"),
    ("{{ Array(x, 'String') }}", {"x": ["a,b", "c"]}, "['a,b','c']"),
    ("{{ Array(x, 'String') }}", {"x": "a, b"}, "['a',' b']"),
    ("{{ Array(x, 'String') }}", {"x": "it's,ok"}, "['it\\'s','ok']"),
    ("{{ Array(x, 'UInt8') }}", {"x": "0,255"}, "[0,255]"),
    ("{{ Array(x, 'Float64') }}", {"x": "1.5,-2"}, "[1.5,-2.0]"),
    ("{{ Array(x, 'Boolean') }}", {"x": "true,0"}, "[1,0]"),
    ("{{ Array(x, 'Date') }}", {"x": "2024-01-01,2024-01-02"}, "['2024-01-01','2024-01-02']"),
    ("{{ Array(x, 'DateTime') }}", {"x": "2024-01-01T01:02:03"}, "['2024-01-01 01:02:03']"),
    (
        "{{ Array(x, 'UUID') }}",
        {"x": "123e4567-e89b-12d3-a456-426614174000"},
        "['123e4567-e89b-12d3-a456-426614174000']",
    ),
    ("{{ Array(x, 'Int') }}", {"x": "7"}, "[7]"),
    ("{{ Array(x, 'String', default=['mobile', 'desktop']) }}", {}, "['mobile','desktop']"),
    ("{{ Array(x, 'Int32', default='1,2') }}", {}, "[1,2]"),
    ("{{ Array(x, 'Int32', '1,2') }}", {}, "[1,2]"),
    ("{{ Array(x, type='Int16', default=[3]) }}", {}, "[3]"),
    ("{{ Array(colors, 'black') }}", {}, "['black']"),
    ("{{ Array(colors, 'black') }}", {"colors": "red"}, "['red']"),
    ("{{ Array(x, 'Int32') }}", {}, "[]"),
    ("{{ Array(x, 'Int32', defined=False) }}", {}, "[]"),
]


@pytest.mark.parametrize(("body", "values", "expected"), ARRAYS)
def test_arrays(body, values, expected):
    assert r(body, values) == expected


@pytest.mark.parametrize(
    ("body", "values", "message"),
    [
        (
            "{{ Array(x, 'Int32') }}",
            {"x": "1,a"},
            "Parameter 'x' must be Array(Int32) (element 'a' is not Int32)",
        ),
        ("{{ Array(x, 'UInt8') }}", {"x": ["1", "256"]}, "Parameter 'x' must be Array(UInt8) (element '256'"),
        ("{{ Array(x, 'Int32') }}", {"x": "1,,2"}, "(element '' is not Int32)"),
        ("{{ Array(x, 'Date') }}", {"x": "2024-01-01,tomorrow"}, "must be Array(Date)"),
        ("{{ Array(x, type='Nope') }}", {"x": "1"}, "Array() element type must be one of"),
        ("{{ Array(x, type=5) }}", {"x": "1"}, "Array() element type must be one of"),
        ("{{ Array(x, 'Int32') }}", {"x": ",".join(["1"] * 100_001)}, "Arrays are limited to 100000 items"),
    ],
)
def test_array_errors(body, values, message):
    with pytest.raises(TemplateError) as info:
        r(body, values)
    assert message in str(info.value)


def test_bad_arguments_to_typed_functions():
    with pytest.raises(TemplateError, match="unexpected keyword argument 'colour'"):
        r("{{ String(x, colour='red') }}")
    with pytest.raises(TemplateError, match="missing its argument 'param'"):
        r("{{ String() }}")
    with pytest.raises(TemplateError, match="takes at most"):
        r("{{ String(x, 1, 2, 3, 4, 5, 6, 7, 8) }}")
