"""The `schema` parameter / SCHEMA block: parsing, canonical rendering (`sql_schema`), name rules,
indexes."""

from __future__ import annotations

import re

import pytest

from tody.datafiles.schema import parse_indexes, parse_schema, render_index, render_schema
from tody.engine.ddl import Column, DDLError, Index


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# Schemas as the tb CLI pushes them: rendered columns joined with ",".
PUSHED = [
    "`timestamp` DateTime `json:$.timestamp`,`event` LowCardinality(String) `json:$.event`,"
    "`user_id` String `json:$.user_id`,`price` Float64 `json:$.price`,`qty` Int32 `json:$.qty`",
    "`day` Date,`event` LowCardinality(String),`events` AggregateFunction(count),"
    "`total` AggregateFunction(sum, Float64),`users` AggregateFunction(uniq, String)",
    "`country` LowCardinality(String) `json:$.geo.country` DEFAULT 'unknown',`payload` String `json:$`",
    "`items` Array(String) `json:$.items[:]`,`at` DateTime64(3, 'UTC') `json:$.at` DEFAULT now64(3)",
    "`n` UInt64 `json:$.n` DEFAULT 0 CODEC(Delta(8), ZSTD(1)),`d` Decimal(18, 2) `json:$.d`",
    "`m` Map(String, Array(Nullable(Float64))) `json:$.m`,`t` Tuple(a String, b Int8) `json:$.t`",
    "`e` Enum8('a' = 1, 'b' = 2) `json:$.e`,`u` UUID `json:$.u`,`x` Nullable(String) `json:$.x.y.z`",
    "`a` String,`b` String MATERIALIZED upper(a),`c` UInt64 ALIAS length(a)",
]


@pytest.mark.parametrize("schema", PUSHED)
def test_render_matches_what_the_cli_pushed(schema):
    columns = parse_schema(schema)
    assert squash(render_schema(columns)) == squash(schema)
    assert parse_schema(render_schema(columns)) == columns


def test_parse_columns():
    text = (
        "`timestamp` DateTime `json:$.timestamp`, event LowCardinality( String ) json:$.event,\n"
        "`c` String DEFAULT 'x, (y' CODEC(ZSTD(1)),\n"
        "d Nullable(Int32) MATERIALIZED toInt32(1) `json:$.a.b[:]`,"
        "`t` Tuple(a String, b Int8), `z` DateTime64(3, 'UTC') default now64()"
    )
    assert parse_schema(text) == [
        Column("timestamp", "DateTime", jsonpath="$.timestamp"),
        Column("event", "LowCardinality(String)", jsonpath="$.event"),
        Column("c", "String", default="'x, (y'", codec="ZSTD(1)"),
        Column(
            "d", "Nullable(Int32)", jsonpath="$.a.b[:]", default="toInt32(1)", default_kind="MATERIALIZED"
        ),
        Column("t", "Tuple(a String, b Int8)"),
        Column("z", "DateTime64(3, 'UTC')", default="now64()"),
    ]
    assert render_schema(parse_schema(text)) == (
        "`timestamp` DateTime `json:$.timestamp`, `event` LowCardinality(String) `json:$.event`, "
        "`c` String DEFAULT 'x, (y' CODEC(ZSTD(1)), "
        "`d` Nullable(Int32) `json:$.a.b[:]` MATERIALIZED toInt32(1), "
        "`t` Tuple(a String, b Int8), `z` DateTime64(3, 'UTC') DEFAULT now64()"
    )


def test_nullable_property():
    cols = parse_schema(
        "a Nullable(String), b LowCardinality(Nullable(String)), c String, d Array(Nullable(UInt8))"
    )
    assert [c.nullable for c in cols] == [True, True, False, False]


def test_trailing_comma_is_tolerated():
    assert parse_schema("`a` String,\n") == [Column("a", "String")]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("", "The schema is empty"),
        ("1abc String", "Invalid column name '1abc': it starts with a digit"),
        ("`1abc` String", "starts with a digit"),
        ("`my col` String", "Invalid column name 'my col': it contains a space"),
        ("my-col String", "contains '-'"),
        ("`a.b` String", "contains '.'"),
        ("`ñ` String", "contains 'ñ'"),
        ("`` String", "is empty"),
        ("`a``b` String", "contains '`'"),
        ("`a` String) ENGINE = File(CSV, '/etc/passwd') --", "Unbalanced ')'"),
        ("`a` String, x UInt8; DROP TABLE t", "unexpected '; DROP TABLE t'"),
        ("`a` String -- comment", "comments are not allowed"),
        ("`a`", "has no type"),
        ("`a` String,, `b` String", "Column 2 of the schema is empty"),
        ("`a` String, `a` UInt8", "Column 'a' appears twice"),
        ("`a` Strin", "Unknown type 'Strin'"),
        ("`a` string", "did you mean String?"),
        ("`a` String `json:a.b`", "a jsonpath starts with '$'"),
        ("`a` String `json:$.a` `json:$.b`", "two jsonpaths"),
        ("`a` String DEFAULT", "DEFAULT needs an expression"),
        ("`a` String DEFAULT 'x' DEFAULT 'y'", "two DEFAULT"),
        ("`a` String CODEC(ZSTD(1)) CODEC(LZ4)", "two CODEC"),
        ("`a` String NOT NULL", "unexpected 'NOT NULL' after the type String"),
        ("`a` Nullable(Array(String))", "Column 'a': Array cannot be inside Nullable"),
        ("`a` String DEFAULT 'x", "Unterminated string"),
    ],
)
def test_schema_errors(schema, message):
    with pytest.raises(DDLError) as err:
        parse_schema(schema)
    assert message in str(err.value)


def test_error_offsets_point_into_the_text():
    text = "`a` String,\n`b` Strin"
    with pytest.raises(DDLError) as err:
        parse_schema(text)
    assert text[err.value.offset :].startswith("Strin")


def test_indexes():
    text = (
        "idx1 a TYPE bloom_filter(0.01) GRANULARITY 4\n"
        "INDEX idx2 (a, b) TYPE minmax, idx3 lower(s)\n    TYPE ngrambf_v1(3, 256, 2, 0) GRANULARITY 1\n"
        "idx4 s TYPE text(tokenizer = 'splitByNonAlpha')"
    )
    indexes = parse_indexes(text)
    assert indexes == [
        Index("idx1", "a", "bloom_filter(0.01)", 4),
        Index("idx2", "(a, b)", "minmax", None),
        Index("idx3", "lower(s)", "ngrambf_v1(3, 256, 2, 0)", 1),
        Index("idx4", "s", "text(tokenizer = 'splitByNonAlpha')", None),
    ]
    assert [render_index(ix) for ix in indexes][:2] == [
        "idx1 a TYPE bloom_filter(0.01) GRANULARITY 4",
        "idx2 (a, b) TYPE minmax",
    ]
    assert parse_indexes(", ".join(render_index(ix) for ix in indexes)) == indexes
    assert parse_indexes("") == [] and parse_indexes(None) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("idx1 a", "expected `idx1 expression TYPE"),
        ("idx1 TYPE minmax", "expected `idx1 expression TYPE"),
        ("idx1 a TYPE minmax GRANULARITY x", "GRANULARITY must be a positive integer"),
        ("idx1 a TYPE minmax GRANULARITY 0", "GRANULARITY must be a positive integer"),
        ("idx1 a TYPE", "TYPE is empty"),
        ("idx1 a TYPE minmax\nidx1 b TYPE minmax", "same name"),
        ("idx1 f(a TYPE minmax", "Unclosed"),
        ("idx1 a TYPE minmax -- x", "Comments are not allowed"),
    ],
)
def test_index_errors(text, message):
    with pytest.raises(DDLError) as err:
        parse_indexes(text)
    assert message in str(err.value)
