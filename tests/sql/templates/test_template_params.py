"""params(): the parameters a template declares, found statically in every branch."""

from __future__ import annotations

import pytest

from tody.sql.templates import ParamSpec, TemplateError, params

EXAMPLE = """%
SELECT toDate(timestamp) AS day, count() AS c
FROM events
WHERE 1 = 1
{% if defined(country) %} AND country IN {{Array(country, 'String')}} {% end %}
{% if not defined(start) %} AND timestamp >= now() - INTERVAL 7 DAY
{% else %} AND timestamp >= {{DateTime(start, description="start", required=False)}} {% end %}
GROUP BY day ORDER BY day
LIMIT {{Int32(limit, 100, description="max rows", required=False)}}
"""


def test_reference_example():
    assert params(EXAMPLE) == [
        ParamSpec(name="country", type="Array(String)"),
        ParamSpec(name="start", type="DateTime", description="start"),
        ParamSpec(name="limit", type="Int32", default=100, description="max rows"),
    ]


def test_plain_sql_has_no_params():
    assert params("SELECT {{ Int32(x) }}") == []
    assert params("%\nSELECT 1") == []


def test_every_branch_is_walked_in_source_order():
    sql = """%
    {% if defined(a) %}
        {{ Int8(a) }}
    {% elif Boolean(flag, False) %}
        {{ String(b, 'x', enum=['x', 'y'], example='y') }}
    {% else %}
        {% for i in split_to_array(items, '') %}
            {% if 0 %}{{ Date(d, '2024-01-01', required=True, format='YYYY-MM-DD') }}{% end %}
        {% end %}
    {% end %}
    {% set z = UInt64(zz, 5) %}
    {{ sql_and(c__in=Array(cs, 'Int32', defined=False), e__gt=Float64(e, -1.5)) }}
    """
    assert params(sql) == [
        ParamSpec(name="a", type="Int8"),
        ParamSpec(name="flag", type="Boolean", default=False),
        ParamSpec(name="b", type="String", default="x", example="y", enum=("x", "y")),
        ParamSpec(name="d", type="Date", default="2024-01-01", required=True, format="YYYY-MM-DD"),
        ParamSpec(name="zz", type="UInt64", default=5),
        ParamSpec(name="cs", type="Array(Int32)"),
        ParamSpec(name="e", type="Float64", default=-1.5),
    ]


def test_duplicates_merge_into_the_first_declaration():
    sql = "%\n{{ Int32(n) }} {% if 1 %}{{ Int32(n, 10, description='rows') }}{% end %} {{ String(n, required=True) }}"
    assert params(sql) == [ParamSpec(name="n", type="Int32", default=10, required=True, description="rows")]


@pytest.mark.parametrize(
    ("expr", "spec"),
    [
        ("Int(x)", ParamSpec("x", "Int32")),
        ("Integer(x, 3)", ParamSpec("x", "Int32", default=3)),
        ("Array(x)", ParamSpec("x", "Array(String)")),
        ("Array(x, 'Int')", ParamSpec("x", "Array(Int32)")),
        ("Array(x, 'UInt8', default='1,2')", ParamSpec("x", "Array(UInt8)", default="1,2")),
        ("Array(x, 'String', default=['a', 'b'])", ParamSpec("x", "Array(String)", default=("a", "b"))),
        ("Array(colors, 'black')", ParamSpec("colors", "Array(String)", default="black")),
        ("Array(x, type='Date')", ParamSpec("x", "Array(Date)")),
        ("DateTime64(x, description=d)", ParamSpec("x", "DateTime64")),
        ("String(x, 'a' + 'b')", ParamSpec("x", "String")),
        ("UUID(x)", ParamSpec("x", "UUID")),
        ("JSON(x, '{}')", ParamSpec("x", "JSON", default="{}")),
        ("Boolean(x, True)", ParamSpec("x", "Boolean", default=True)),
        ("String(x, required='yes')", ParamSpec("x", "String")),
    ],
)
def test_declarations(expr, spec):
    assert params(f"%\n{{{{ {expr} }}}}") == [spec]


def test_calls_without_a_bare_name_declare_nothing():
    assert params("%\n{{ String('literal') }} {{ Int32(Int32(x)) }} {{ column(c, 'a') }}") == [
        ParamSpec("x", "Int32")
    ]


def test_specs_are_frozen_and_hashable():
    specs = params(EXAMPLE)
    assert len(set(specs)) == 3
    with pytest.raises(AttributeError):
        specs[0].name = "other"  # type: ignore[misc]


def test_syntax_errors_are_reported():
    with pytest.raises(TemplateError, match="attribute access"):
        params("%\n{{ Int32(x).real }}")
