"""Template structure: detection, blocks, loops, variables, comments, whitespace and syntax errors."""

from __future__ import annotations

import pytest

from tody.sql.templates import TemplateError, is_template, render


def r(body: str, values: dict | None = None, **kwargs) -> str:
    return render("%\n" + body, values or {}, **kwargs)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("%\nSELECT 1", True),
        ("  %  \nSELECT 1", True),
        ("\n\n  \n%\nSELECT 1", True),
        ("%", True),
        ("%\r\nSELECT 1", True),
        ("SELECT 1 % 2", False),
        ("%%\nSELECT 1", False),
        ("SELECT 1\n%", False),
        ("", False),
        ("\n\n", False),
        ("% SELECT 1", False),
    ],
)
def test_is_template(sql, expected):
    assert is_template(sql) is expected


def test_plain_sql_is_returned_unchanged():
    sql = "SELECT '{{ x }}', '{% if %}' FROM t WHERE a % 2 = 0"
    assert render(sql, {"x": "1"}) == sql


def test_percent_line_is_dropped_and_whitespace_kept():
    sql = "\n  %\nSELECT  a,\n\tb\n  FROM t   \n"
    assert render(sql) == "SELECT  a,\n\tb\n  FROM t   \n"
    assert render("%") == ""
    assert render("%\n") == ""


def test_if_elif_else():
    body = "{% if Int32(n, 0) > 10 %}big{% elif Int32(n, 0) > 1 %}mid{% else %}small{% end %}"
    assert r(body, {"n": "20"}) == "big"
    assert r(body, {"n": "5"}) == "mid"
    assert r(body, {"n": "1"}) == "small"
    assert r(body) == "small"
    assert r("{% if defined(x) %}x{% end %}.") == "."
    assert r("{% if 0 %}a{% elif 0 %}b{% elif 1 %}c{% end %}") == "c"


def test_nested_for_loops_and_loop_variables():
    body = "{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }} {% end %}{% end %}"
    assert r(body) == "1'x' 1'y' 2'x' 2'y' "
    assert r("{% for i, v in enumerate(['a', 'b']) %}{{ i }}={{ v }};{% end %}") == "0='a';1='b';"
    assert r("{% for (k, v) in [(1, 2), (3, 4)] %}{{ k + v }},{% end %}") == "3,7,"
    assert r("{% for k in split_to_array(c, 'a,b') %}{{ column(k) }} {% end %}") == "`a` `b` "
    assert r("{% for i in range(3) %}{{ i }}{% end %}{{ i }}") == "0122"  # Python scoping


def test_break_and_continue():
    body = "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% end %}{% if i == 4 %}{% break %}{% end %}{{ i }}{% end %}"
    assert r(body) == "013"


def test_set_and_variables():
    assert r("{% set n = 3 %}{% set n = n * 2 %}{{ n }}") == "6"
    assert r("{% set x = 'local' %}{{ x }}", {"x": "request"}) == "'local'"
    assert r("{{ x }}", {"x": "request"}, variables={"x": 7}) == "7"
    assert r("{% set c = column(col, 'a') %}SELECT {{ c }}", {"col": "b"}) == "SELECT `b`"


def test_comments():
    assert r("a{# a comment {{ x.y }} {% if %} #}b") == "ab"
    assert r("a{% comment it's free text {{ %}b") == "ab"
    assert r("a{#\nmulti\nline\n#}b") == "ab"


def test_literal_openers():
    assert r("{{! x }} {%! y %} {#! z #}") == "{{ x }} {% y %} {# z #}"
    assert r("SELECT map('a', 1), {'a': 1}") == "SELECT map('a', 1), {'a': 1}"


def test_expressions():
    cases = {
        "{{ 1 + 2 * 3 }}": "7",
        "{{ (1 + 2) * 3 }}": "9",
        "{{ 7 // 2 }}, {{ 7 % 3 }}, {{ 7 / 2 }}": "3, 1, 3.5",
        "{{ -3 }} {{ - (2) }} {{ +4 }}": "-3 -2 4",
        "{{ 'a' + 'b' }}": "'ab'",
        "{{ 'a' 'b' }}": "'ab'",
        "{{ [1, 2] + [3] }}": "[1,2,3]",
        "{{ (1, 'a') }} {{ (1,) }} {{ () }}": "(1,'a') tuple(1) tuple()",
        "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}": "1 0",
        "{{ 'b' in ['a', 'b'] }} {{ 'z' not in 'xyz' }}": "1 0",
        "{{ None is None }} {{ 1 is not None }} {{ None }}": "1 1 NULL",
        "{{ not 0 }} {{ 1 and 0 }} {{ 0 or 'x' }}": "1 0 'x'",
        "{{ 'yes' if 1 > 0 else 'no' }}": "'yes'",
        "{{ ['a', 'b'][-1] }} {{ 'abc'[0] }}": "'b' 'a'",
        "{{ 1.5e3 }} {{ .5 }} {{ 1e20 }}": "1500.0 0.5 1e+20",
        "{{ True }} {{ False }}": "1 0",
        r"{{ 'it\'s' }} {{ 'a\nb' }} {{ 'tab\there' }}": r"'it\'s' 'a\nb' 'tab\there'",
        """{{ "'q'" }}""": r"'\'q\''",
        r"{{ r'\d' }} {{ '\x41\u00e9' }} {{ 'back\\slash' }}": r"'\\d' 'Aé' 'back\\slash'",
    }
    for body, expected in cases.items():
        assert r(body) == expected, body


def test_negative_numbers_never_form_sql_comments():
    assert r("SELECT 1-{{ Int32(n) }}", {"n": "-5"}) == "SELECT 1- -5"
    assert r("SELECT 1-{{ -2.5 }}") == "SELECT 1- -2.5"
    assert r("SELECT {{ Int32(n) }}", {"n": "-5"}) == "SELECT -5"


def test_whitespace_inside_tags_is_free():
    assert r("{%if 1%}a{%end%}{{1}}{{\n  Int32(\n n,\n 2 )\n}}") == "a12"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ x ", "is never closed"),
        ("{% if 1 ", "is never closed"),
        ("{# c ", "comment '{#' is never closed"),
        ("{{ String(1 }}", "'(' is never closed"),
        ("{{ f(1) }}", "unknown function 'f'"),
        ("{{ (1 }}", "'(' is never closed"),
        ("{{ 1) }}", "unmatched ')'"),
        ("{% end %}", "without a matching"),
        ("{% if 1 %}a", "{% if %} is never closed"),
        ("{% for i in [1] %}a", "{% for %} is never closed"),
        ("{% if 1 %}{% else %}{% else %}{% end %}", "after {% else %}"),
        ("{% if 1 %}{% else %}{% elif 1 %}{% end %}", "after {% else %}"),
        ("{% elif 1 %}", "without a matching {% if %}"),
        ("{% for i in [1] %}{% else %}{% end %}", "without a matching {% if %}"),
        ("{% while 1 %}{% end %}", "{% while %} is not supported"),
        ("{% raw x %}", "{% raw %} is not supported"),
        ("{% include 'x' %}", "{% include %} is not supported"),
        ("{% import os %}", "{% import %} is not supported"),
        ("{% frobnicate %}", "unknown template tag"),
        ("{% %}", "empty {% %} tag"),
        ("{{ }}", "empty expression"),
        ("{% if %}{% end %}", "needs a condition"),
        ("{% set x %}", "expected {% set name = expression %}"),
        ("{% set x += 1 %}", "expected {% set name = expression %}"),
        ("{% set 1 = 2 %}", "expected a variable name"),
        ("{% for x y %}{% end %}", "expected {% for name in expression %}"),
        ("{% for in x %}{% end %}", "expected a variable name"),
        ("{% break %}", "outside a {% for %} loop"),
        ("{% end extra %}", "unexpected text after {% end %}"),
        ("{{ 1abc }}", "invalid number"),
        ("{{ 'abc }}", "string literal is never closed"),
        ("{{ '''x''' }}", "triple-quoted strings are not supported"),
        ("{{ b'x' }}", "string prefix 'b' is not supported"),
        ("{{ 1 2 }}", "unexpected 2"),
        ("{{ a if b }}", "expected 'else'"),
        ("{{ x $ y }}", "unexpected character '$'"),
        ("{{ f(a=1, 2) }}", "unknown function 'f'"),
        ("{{ String(a=1, 2) }}", "positional argument follows keyword argument"),
        ("{{ String(x, default=1, default=2) }}", "keyword argument 'default' is repeated"),
        ("{{ x = 1 }}", "unexpected '='"),
        ("{{ 1 == not 2 }}", "unexpected 'not'"),
        ("{{ '\\N{DASH}' }}", "escapes are not supported"),
        ("{{ '\\x4' }}", "invalid escape"),
    ],
)
def test_syntax_errors(body, message):
    with pytest.raises(TemplateError) as info:
        r(body)
    assert message in str(info.value)


def test_syntax_errors_give_the_line_of_the_users_sql():
    with pytest.raises(TemplateError, match="at line 4:"):
        render("\n%\nSELECT 1\nWHERE {{ x.y }}")
    with pytest.raises(TemplateError, match="at line 3:"):
        render("%\nSELECT\n{% if 1 %}")


def test_errors_are_value_errors_for_http_400():
    assert issubclass(TemplateError, ValueError)
