"""The other template functions: defined, column(s), symbol, sql_and, split_to_array, dates, errors,
and the small general helpers."""

from __future__ import annotations

import pytest

from tody.sql.templates import FUNCTIONS, TemplateError, TemplateHTTPError, render


def r(body: str, values: dict | None = None, **kwargs) -> str:
    return render("%\n" + body, values or {}, **kwargs)


@pytest.mark.parametrize(
    ("values", "variables", "expected"),
    [
        ({"x": "1"}, None, "yes"),
        ({"x": "0"}, None, "yes"),
        ({"x": ["a", "b"]}, None, "yes"),
        ({}, None, "no"),
        ({"x": ""}, None, "no"),
        ({"x": [""]}, None, "no"),
        ({"x": ["", ""]}, None, "no"),
        ({"y": "1"}, None, "no"),
        ({}, {"x": 5}, "yes"),
        ({}, {"x": None}, "no"),
    ],
)
def test_defined(values, variables, expected):
    assert r("{% if defined(x) %}yes{% else %}no{% end %}", values, variables=variables) == expected


def test_defined_sees_template_variables_and_combines():
    assert r("{% set x = 1 %}{{ defined(x) }}") == "1"
    body = "{% if defined(n) and Int32(n) > 3 %}big{% end %}"
    assert r(body, {"n": "5"}) == "big"
    assert r(body) == ""
    assert r("{% if not defined(n) %}none{% end %}") == "none"


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("{{ column(c) }}", {"c": "name"}, "`name`"),
        ("{{ column(c, 'timestamp') }}", {}, "`timestamp`"),
        ("{{ column(c, 'timestamp') }}", {"c": ""}, "`timestamp`"),
        ("{{ column(c, default='ts') }}", {}, "`ts`"),
        ("{{ column(c) }}", {"c": "t.col"}, "`t`.`col`"),
        ("{{ column(c) }}", {"c": "_x9"}, "`_x9`"),
        ("{% set var_1 = 'name' %}{{ column(var_1) }}", {}, "`name`"),
        ("{{ columns(c) }}", {"c": "a,b"}, "`a`, `b`"),
        ("{{ columns(c, 'a, b ,c') }}", {}, "`a`, `b`, `c`"),
        ("{{ columns(c) }}", {"c": ["a", "b.c"]}, "`a`, `b`.`c`"),
        ("{% set var_1 = 'name,age,address' %}{{ columns(var_1) }}", {}, "`name`, `age`, `address`"),
        ("{{ symbol(s) }}", {"s": "my col"}, "`my col`"),
        ("{{ symbol(s, 'a.b') }}", {}, "`a.b`"),
        ("{{ symbol(s) }}", {"s": "é"}, "`é`"),
    ],
)
def test_identifiers(body, values, expected):
    assert r(body, values) == expected


@pytest.mark.parametrize(
    ("body", "value", "message"),
    [
        ("{{ column(c) }}", "a b", "Parameter 'c' must be a column name (got 'a b')"),
        ("{{ column(c) }}", "a;DROP", "must be a column name"),
        ("{{ column(c) }}", "a`b", "must be a column name"),
        ("{{ column(c) }}", "`a`", "must be a column name"),
        ("{{ column(c) }}", "1a", "must be a column name"),
        ("{{ column(c) }}", "count()", "must be a column name"),
        ("{{ column(c) }}", "a.b.c.d", "must be a column name"),
        ("{{ column(c) }}", "a--", "must be a column name"),
        ("{{ column(c) }}", "a\nb", "must be a column name"),
        ("{{ columns(c) }}", "a,b c", "must be a column name"),
        ("{{ columns(c) }}", ",,", "names no column"),
        ("{{ symbol(c) }}", "a`b", "must be a name without backticks"),
        ("{{ symbol(c) }}", "a\\b", "must be a name without backticks"),
        ("{{ symbol(c) }}", "a\nb", "must be a name without backticks"),
        ("{{ symbol(c) }}", "x" * 300, "must be a name without backticks"),
    ],
)
def test_identifier_errors(body, value, message):
    with pytest.raises(TemplateError) as info:
        r(body, {"c": value})
    assert message in str(info.value)


def test_identifier_without_value_or_default():
    for func in ("column", "columns", "symbol"):
        with pytest.raises(
            TemplateError, match=rf"{func}\(\): parameter 'c' is missing and there is no default"
        ):
            r(f"{{{{ {func}(c) }}}}")


@pytest.mark.parametrize(
    ("args", "values", "expected"),
    [
        ("a__in=Array(x, 'Int32')", {"x": "1,2"}, "`a` IN [1,2]"),
        ("a__not_in=Array(x, 'String')", {"x": "p,q"}, "`a` NOT IN ['p','q']"),
        ("a__in=String(x)", {"x": "p"}, "`a` IN ['p']"),
        ("a__eq=Int32(x)", {"x": "1"}, "`a` = 1"),
        ("a=Int32(x)", {"x": "1"}, "`a` = 1"),
        ("a__neq=String(x)", {"x": "v"}, "`a` != 'v'"),
        ("a__ne=Int32(x)", {"x": "1"}, "`a` != 1"),
        ("a__gt=Int32(x)", {"x": "1"}, "`a` > 1"),
        ("a__gte=DateTime(x)", {"x": "2024-01-01"}, "`a` >= '2024-01-01 00:00:00'"),
        ("a__lt=Float64(x)", {"x": "1.5"}, "`a` < 1.5"),
        ("a__lte=Date(x)", {"x": "2024-01-01"}, "`a` <= '2024-01-01'"),
        ("a__like=String(x)", {"x": "%it's%"}, "`a` LIKE '%it\\'s%'"),
        ("a__not_like=String(x)", {"x": "x%"}, "`a` NOT LIKE 'x%'"),
        ("a__ilike=String(x)", {"x": "x%"}, "`a` ILIKE 'x%'"),
        ("my_col__in=Array(x, 'Int32', defined=False), b__gt=Int32(y, defined=False)", {"y": "3"}, "`b` > 3"),
        ("a__in=Array(x, 'Int32', defined=False), b__eq=String(y, defined=False)", {}, "1"),
        ("a__in=Array(x, 'Int32', defined=False), b__lt=Int32(y, 9)", {"x": "1"}, "`a` IN [1] AND `b` < 9"),
        ("a__eq=None", {}, "1"),
        ("", {}, "1"),
    ],
)
def test_sql_and(args, values, expected):
    assert r(f"{{{{ sql_and({args}) }}}}", values) == expected


def test_sql_and_errors():
    with pytest.raises(TemplateError, match="unknown operator '__between'"):
        r("{{ sql_and(a__between=1) }}")
    with pytest.raises(TemplateError, match="keyword arguments only"):
        r("{{ sql_and(1) }}")
    assert r("{{ sql_and(a__b__eq=1) }}") == "`a__b` = 1"


def test_sql_and_in_a_where_clause():
    body = "SELECT * FROM t WHERE {{ sql_and(country__in=Array(c, 'String', defined=False), n__gte=Int32(n, 0)) }}"
    assert r(body, {"c": "ES,FR"}) == "SELECT * FROM t WHERE `country` IN ['ES','FR'] AND `n` >= 0"


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("{{ split_to_array(x) }}", {"x": "a, b,,c"}, "['a','b','c']"),
        ("{{ split_to_array(x, 'd,e') }}", {}, "['d','e']"),
        ("{{ split_to_array(x, '') }}", {}, "[]"),
        ("{{ split_to_array(x) }}", {}, "[]"),
        ("{{ split_to_array(x, separator='|') }}", {"x": "a|b,c"}, "['a','b,c']"),
        ("{{ split_to_array(x) }}", {"x": ["a", "b"]}, "['a','b']"),
        ("{{ split_to_array(String(x, '1,2')) }}", {}, "['1','2']"),
        ("{% for v in split_to_array(x, '') %}[{{ v }}]{% end %}", {"x": "p,q"}, "['p']['q']"),
    ],
)
def test_split_to_array(body, values, expected):
    assert r(body, values) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{{ day_diff('2024-01-01', '2024-03-01') }}", "60"),
        ("{{ day_diff('2024-03-01', '2024-01-01') }}", "60"),
        ("{{ day_diff('2024-01-01 23:00:00', '2024-01-02T01:00:00') }}", "1"),
        ("{{ date_diff_in_seconds('2024-01-01 00:00:00', '2024-01-01 00:01:00') }}", "60"),
        ("{{ date_diff_in_minutes('2024-01-01 00:00:00', '2024-01-01 01:30:00') }}", "90"),
        ("{{ date_diff_in_hours('2024-01-02 00:00:00', '2024-01-01 00:00:00') }}", "24"),
        ("{{ date_diff_in_days('2024-01-01 00:00:00', '2024-01-03 12:00:00') }}", "2.5"),
        ("{{ date_diff_in_days('2024-01-01', '2024-01-11', date_format='%Y-%m-%d') }}", "10"),
        (
            "{{ date_diff_in_seconds('2024-01-01', '2024-01-01 00:00:05', backup_date_format='%Y-%m-%d') }}",
            "5",
        ),
        ("{{ date_diff_in_seconds('x', '2024-01-01 00:00:00', none_if_error=True) }}", "NULL"),
        (
            "{{ date_diff_in_seconds('2022-12-19T18:42:23.521Z', '2022-12-19T18:42:22.321Z', "
            "date_format='%Y-%m-%dT%H:%M:%S.%fz') }}",
            "1.2",
        ),
        (
            "{{ date_diff_in_hours('2024-01-01T00:00:00+02:00', '2024-01-01T00:00:00Z', date_format='%Y-%m-%dT%H:%M:%S%z') }}",
            "2",
        ),
        (
            "{% if date_diff_in_days(DateTime(s), DateTime(e)) > 31 %}{{ error('range too wide') }}{% end %}ok",
            "ok",
        ),
    ],
)
def test_date_functions(body, expected):
    assert r(body, {"s": "2024-01-01", "e": "2024-01-20"}) == expected


def test_date_function_errors():
    with pytest.raises(TemplateError, match=r"date_diff_in_seconds\(\): 'x' does not match the date format"):
        r("{{ date_diff_in_seconds('x', '2024-01-01 00:00:00') }}")
    with pytest.raises(TemplateError, match=r"day_diff\(\): '2024-02-30' is not a date"):
        r("{{ day_diff('2024-02-30', '2024-01-01') }}")
    with pytest.raises(TemplateError, match="missing its argument 'd2'"):
        r("{{ day_diff('2024-01-01') }}")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{{ error('bad range') }}", 400, "bad range"),
        ("{{ error('not here', code=404) }}", 404, "not here"),
        ("{{ error('teapot', 418) }}", 418, "teapot"),
        ("{{ error('x', code=500) }}", 400, "x"),
        ("{{ error('x', code=200) }}", 400, "x"),
        ("{{ error('x', code='403') }}", 403, "x"),
        ("{{ error('x', code=True) }}", 400, "x"),
        ("{{ custom_error({'error': 'forbidden', 'code': 403}) }}", 403, "forbidden"),
        ("{{ custom_error({'error': 'nope'}) }}", 400, "nope"),
        ("{{ custom_error({'error': 'oops', 'code': 503}) }}", 400, "oops"),
        ("{{ custom_error('plain') }}", 400, "plain"),
        ("{% if Int32(limit, 10) > 100 %}{{ error('limit too high', 422) }}{% end %}", 422, "limit too high"),
    ],
)
def test_errors(body, status, message):
    with pytest.raises(TemplateHTTPError) as info:
        r(body, {"limit": "500"})
    assert info.value.status == status
    assert info.value.message == message
    assert info.value.body["error"] == message


def test_custom_error_extra_fields_and_untaken_branches():
    with pytest.raises(TemplateHTTPError) as info:
        r("{{ custom_error({'error': 'e', 'code': 409, 'documentation': 'https://x', 'nested': [1]}) }}")
    assert info.value.body == {"error": "e", "documentation": "https://x"}
    assert r("{% if 0 %}{{ error('never') }}{% end %}ok") == "ok"
    assert not issubclass(TemplateHTTPError, ValueError)


def test_secrets_are_not_supported_yet():
    for body in ("{{ tb_secret('KEY') }}", "{{ tb_secret('KEY', 'default') }}", "{{ tb_var('V') }}"):
        with pytest.raises(TemplateError, match="secrets are not supported yet"):
            r(body)


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("{{ enum_with_default(o, 'asc') }}", {"o": "desc"}, "'desc'"),
        ("{{ enum_with_default(o, 'asc') }}", {}, "'asc'"),
        ("{{ enum_with_default(o, 'asc', ['asc', 'desc']) }}", {"o": "drop"}, "'asc'"),
        ("{{ enum_with_default(o, 'asc', enum=['asc', 'desc']) }}", {"o": "desc"}, "'desc'"),
        ("{{ sql_unescape(String(p), '%') }}", {"p": "50\\%"}, "'50%'"),
        ("{{ sql_unescape(String(p), '%_') }}", {"p": "a\\_b\\%c\\d"}, "'a_b%c\\\\d'"),
        ("{{ sql_unescape(String(p)) }}", {"p": "x\\'"}, "'x\\\\\\''"),
        ("{{ len(x) }} {{ len('abc') }} {{ len([1, 2]) }}", {"x": "hello"}, "5 3 2"),
        ("{{ max(1, 5, 3) }} {{ min([4, 2]) }} {{ max('a', 'b') }}", {}, "5 2 'b'"),
        ("{{ abs(-3) }} {{ round(2.567, 2) }} {{ round(2.5) }}", {}, "3 2.57 2"),
        ("{{ range(3) }} {{ range(1, 7, 2) }}", {}, "[0,1,2] [1,3,5]"),
        (
            "{{ int('42') + 1 }} {{ int(3.9) }} {{ float('1.5') }} {{ str(12) }} {{ str(1.5) }}",
            {},
            "43 3 1.5 '12' '1.5'",
        ),
        ("{{ bool('') }} {{ bool('x') }} {{ str(None) }}", {}, "0 1 'None'"),
        ("{{ int(n) * 2 }}", {"n": "21"}, "42"),
    ],
)
def test_helpers(body, values, expected):
    assert r(body, values) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ len(1) }}", "len() takes a string or a list"),
        ("{{ max() }}", "needs at least one value"),
        ("{{ max(1, 'a') }}", "cannot be compared"),
        ("{{ abs('x') }}", "abs() takes a number"),
        ("{{ round(1.5, 99) }}", "between -20 and 20"),
        ("{{ range(1, 2, 0) }}", "step must not be zero"),
        ("{{ range('3') }}", "range() takes one to three integers"),
        ("{{ int('1.5') }}", "int() cannot convert"),
        ("{{ float('x') }}", "must be Float64"),
        ("{{ str([1]) }}", "str() takes a string, number or boolean"),
        ("{{ enumerate(1) }}", "enumerate() takes a list"),
        ("{{ sql_unescape(1) }}", "sql_unescape() takes a string"),
        ("{{ split_to_array(x, separator='') }}", "non-empty separator"),
    ],
)
def test_helper_errors(body, message):
    with pytest.raises(TemplateError) as info:
        r(body, {"x": "a"})
    assert message in str(info.value)


def test_function_table_is_the_documented_allow_list():
    typed = {
        "String",
        "Boolean",
        "Date",
        "DateTime",
        "DateTime64",
        "Float32",
        "Float64",
        "UUID",
        "JSON",
        "Array",
    }
    typed |= {f"{u}Int{b}" for u in ("", "U") for b in (8, 16, 32, 64, 128, 256)} | {"Int", "Integer"}
    others = {
        "defined", "column", "columns", "symbol", "sql_and", "split_to_array", "enum_with_default",
        "sql_unescape", "day_diff", "date_diff_in_seconds", "date_diff_in_minutes", "date_diff_in_hours",
        "date_diff_in_days", "error", "custom_error", "tb_secret", "tb_var", "len", "max", "min", "abs",
        "round", "range", "enumerate", "int", "float", "str", "bool",
    }  # fmt: skip
    assert set(FUNCTIONS) == typed | others


def test_variables_are_trusted_values():
    assert r("{{ x }} {{ y }} {{ z }}", variables={"x": 5, "y": "s", "z": [1, 2]}) == "5 's' [1,2]"
    assert r("{{ Int32(org, 0) }}", {"org": "1"}, variables={"org": 9}) == "9"
