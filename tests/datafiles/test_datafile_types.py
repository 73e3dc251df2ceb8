"""The ClickHouse type grammar: what it accepts (and how it writes it), what it refuses, and proof on the
real engine that every accepted type creates a table."""

from __future__ import annotations

import pytest

from tody.datafiles.types import is_datetime, is_numeric, is_string, normalize_type
from tody.engine.base import EngineError
from tody.engine.ddl import DDLError, check_type

# (input, canonical)
ACCEPTED = [
    *[(t, t) for t in [f"{s}Int{n}" for s in ("", "U") for n in (8, 16, 32, 64, 128, 256)]],
    ("Float32", "Float32"),
    ("Float64", "Float64"),
    ("BFloat16", "BFloat16"),
    ("Decimal", "Decimal"),
    ("Decimal(18,2)", "Decimal(18, 2)"),
    ("Decimal(10)", "Decimal(10)"),
    ("Decimal( 76 , 76 )", "Decimal(76, 76)"),
    ("Decimal32(9)", "Decimal32(9)"),
    ("Decimal64(4)", "Decimal64(4)"),
    ("Decimal128(20)", "Decimal128(20)"),
    ("Decimal256(40)", "Decimal256(40)"),
    ("String", "String"),
    ("FixedString(16)", "FixedString(16)"),
    ("UUID", "UUID"),
    ("Date", "Date"),
    ("Date32", "Date32"),
    ("DateTime", "DateTime"),
    ("DateTime('UTC')", "DateTime('UTC')"),
    ("DateTime( 'Europe/Madrid' )", "DateTime('Europe/Madrid')"),
    ("DateTime64", "DateTime64"),
    ("DateTime64(3)", "DateTime64(3)"),
    ("DateTime64(9,'UTC')", "DateTime64(9, 'UTC')"),
    ("DateTime64(0, 'America/New_York')", "DateTime64(0, 'America/New_York')"),
    ("Time", "Time"),
    ("Time64(3)", "Time64(3)"),
    ("Bool", "Bool"),
    ("Boolean", "Boolean"),
    ("IPv4", "IPv4"),
    ("IPv6", "IPv6"),
    ("Enum8('a'=1,'b'=2)", "Enum8('a' = 1, 'b' = 2)"),
    ("Enum16('neg' = -1000, 'pos' = 1000)", "Enum16('neg' = -1000, 'pos' = 1000)"),
    ("Enum('x', 'y')", "Enum('x', 'y')"),
    ("Enum8('it\\'s' = 1)", "Enum8('it\\'s' = 1)"),
    ("JSON", "JSON"),
    ("JSON(max_dynamic_paths=10, a.b UInt32, SKIP c.d, SKIP REGEXP 'x.*')", None),
    ("Dynamic", "Dynamic"),
    ("Dynamic(max_types=8)", "Dynamic(max_types=8)"),
    ("Variant(String, UInt64, Array(UInt8))", "Variant(String, UInt64, Array(UInt8))"),
    ("Nullable(String)", "Nullable(String)"),
    ("Nullable(DateTime64(3))", "Nullable(DateTime64(3))"),
    ("Nullable(Decimal(10, 2))", "Nullable(Decimal(10, 2))"),
    ("Nullable(Tuple(a String))", "Nullable(Tuple(a String))"),
    ("Nullable(UUID)", "Nullable(UUID)"),
    ("Nullable(JSON)", "Nullable(JSON)"),
    ("LowCardinality(String)", "LowCardinality(String)"),
    ("LowCardinality( String )", "LowCardinality(String)"),
    ("LowCardinality(FixedString(2))", "LowCardinality(FixedString(2))"),
    ("LowCardinality(Nullable(String))", "LowCardinality(Nullable(String))"),
    ("LowCardinality(UUID)", "LowCardinality(UUID)"),
    ("Array(String)", "Array(String)"),
    ("Array(Nullable(Int32))", "Array(Nullable(Int32))"),
    ("Array(Array(LowCardinality(String)))", "Array(Array(LowCardinality(String)))"),
    ("Map(String,UInt64)", "Map(String, UInt64)"),
    ("Map(LowCardinality(String), Array(Nullable(String)))", None),
    ("Map(UInt32, Map(String, Float64))", "Map(UInt32, Map(String, Float64))"),
    ("Map(Enum8('a' = 1), String)", "Map(Enum8('a' = 1), String)"),
    ("Tuple(String, UInt8)", "Tuple(String, UInt8)"),
    ("Tuple(a String,b Int8)", "Tuple(a String, b Int8)"),
    ("Tuple(`a b` String, `c` Nullable(Float64))", "Tuple(`a b` String, c Nullable(Float64))"),
    ("Tuple()", "Tuple()"),
    ("Nested(a String, b UInt8)", "Nested(a String, b UInt8)"),
    ("AggregateFunction(count)", "AggregateFunction(count)"),
    ("AggregateFunction(sum, Float64)", "AggregateFunction(sum, Float64)"),
    ("AggregateFunction(uniq, String)", "AggregateFunction(uniq, String)"),
    ("AggregateFunction(quantiles(0.5,0.9), Float64)", "AggregateFunction(quantiles(0.5, 0.9), Float64)"),
    ("AggregateFunction(uniqIf, String, UInt8)", "AggregateFunction(uniqIf, String, UInt8)"),
    ("AggregateFunction(argMax, String, DateTime)", "AggregateFunction(argMax, String, DateTime)"),
    ("SimpleAggregateFunction(sum, UInt64)", "SimpleAggregateFunction(sum, UInt64)"),
    ("SimpleAggregateFunction(max, Nullable(DateTime))", "SimpleAggregateFunction(max, Nullable(DateTime))"),
    ("SimpleAggregateFunction(groupArrayArray, Array(String))", None),
    ("Point", "Point"),
    ("Ring", "Ring"),
    ("Polygon", "Polygon"),
    ("MultiPolygon", "MultiPolygon"),
    ("LineString", "LineString"),
    ("MultiLineString", "MultiLineString"),
]

REJECTED = [
    # injection attempts
    ("String) ENGINE = File(CSV, '/etc/passwd') --", "--"),
    ("String, x UInt8", "unexpected ', x UInt8'"),
    ("String; DROP TABLE t", "unexpected '; DROP TABLE t'"),
    ("String /* */", "'/*"),
    ("Nullable(String)) ENGINE = Memory AS SELECT 1 (", "unexpected"),
    ("Array(String) DEFAULT 1", "unexpected"),
    ("Array(file('/etc/passwd'))", "Unknown type 'file'"),
    ("Enum8('a' = 1) SETTINGS x = 1", "unexpected"),
    ("String\n, `x` UInt8", "unexpected"),
    ("$$String$$", "'$'"),
    ("DateTime('UTC\\') --')", "Unknown time zone"),
    # unknown names and wrong case
    ("string", "did you mean String?"),
    ("UINT8", "did you mean UInt8?"),
    ("Text", "Unknown type 'Text'"),
    ("Object('json')", "Unknown type 'Object'"),
    ("Nothing", "Unknown type 'Nothing'"),
    ("Interval", "Unknown type"),
    ("", "Empty type"),
    # parameters
    ("String(10)", "String takes no parameters"),
    ("FixedString", "expected '('"),
    ("FixedString(0)", "out of range"),
    ("FixedString(a)", "expected an integer"),
    ("Decimal(77, 2)", "out of range"),
    ("Decimal(10, 11)", "out of range"),
    ("Decimal32(10)", "out of range"),
    ("DateTime64(10)", "out of range"),
    ("DateTime('Nope/Zone')", "Unknown time zone"),
    ("DateTime(UTC)", "quoted string"),
    ("Enum8()", "at least one value"),
    ("Enum8('a' = 1, 'b' = 1)", "unique"),
    ("Enum8('a' = 1, 'b')", "to every value or to none"),
    ("Enum8('a' = 300)", "out of range"),
    ("Map(String)", "expected ','"),
    ("Array(String, UInt8)", "expected ')'"),
    ("Tuple(String, b Int8)", "every element has a name or none"),
    ("Tuple(a String, a Int8)", "unique"),
    ("Dynamic(max_paths=1)", "unknown parameter"),
    # nesting rules
    ("Nullable(Array(String))", "Array cannot be inside Nullable"),
    ("Nullable(Map(String, String))", "Map cannot be inside Nullable"),
    ("Nullable(Nullable(String))", "Nullable cannot be inside Nullable"),
    ("Nullable(LowCardinality(String))", "LowCardinality cannot be inside Nullable"),
    ("Nullable(Dynamic)", "Dynamic cannot be inside Nullable"),
    ("LowCardinality(UInt8)", "LowCardinality only applies"),
    ("LowCardinality(Date)", "LowCardinality only applies"),
    ("LowCardinality(Array(String))", "LowCardinality only applies"),
    ("LowCardinality(Nullable(UInt8))", "LowCardinality only applies"),
    ("Map(Nullable(String), String)", "Map keys cannot be"),
    ("Map(Array(String), String)", "Map keys cannot be"),
    ("Variant(String, Nullable(UInt8))", "not allowed inside Variant"),
    ("Array(Nested(a String))", "Nested can only be"),
    ("Nested(String)", "needs a name for every element"),
    ("Array(AggregateFunction(sum, UInt64))", "can only be the type of a column"),
    ("SimpleAggregateFunction(uniq, UInt64)", "does not support 'uniq'"),
    ("AggregateFunction(quantile(x), Float64)", "parameters must be numbers"),
    ("Array(" * 40 + "String" + ")" * 40, "nested too deeply"),
]


@pytest.mark.parametrize(("text", "canonical"), ACCEPTED)
def test_accepted_types_are_normalised(text, canonical):
    out = normalize_type(text)
    if canonical is not None:
        assert out == canonical
    assert normalize_type(out) == out  # canonical form is a fixed point
    assert check_type(out) == out  # and passes the DDL shape check


@pytest.mark.parametrize(("text", "message"), REJECTED)
def test_rejected_types_say_why(text, message):
    with pytest.raises(DDLError) as err:
        normalize_type(text)
    assert message in str(err.value)
    assert err.value.offset is not None


def test_every_accepted_type_creates_a_table(engine, database):
    failures = []
    for n, (text, _) in enumerate(ACCEPTED):
        col_type = normalize_type(text)
        try:
            engine.execute(
                f"CREATE TABLE {database}.t{n} (`x` {col_type}) ENGINE = MergeTree ORDER BY tuple()"
            )
        except EngineError as exc:
            failures.append((col_type, exc.message))
    assert failures == []


@pytest.mark.parametrize(
    "text",
    [
        "String) ENGINE = File(CSV, '/etc/passwd') --",
        "String, x UInt8",
        "Nullable(String) ) ENGINE = Memory",
        "Array(String)) SETTINGS x=1 (",
        "Tuple(a String) -- ",
        "lowcardinality(String)",
        "String;",
    ],
)
def test_ddl_shape_check_refuses_breakouts(text):
    with pytest.raises(DDLError):
        check_type(text)


def test_classification_helpers():
    assert is_datetime("DateTime64(3, 'UTC')") and is_datetime("Nullable(Date)") and is_datetime("Date32")
    assert not is_datetime("String")
    assert is_numeric("UInt8") and is_numeric("Decimal(10, 2)") and is_numeric("Nullable(Float64)")
    assert not is_numeric("String") and not is_numeric("Array(UInt8)") and not is_numeric("Bool")
    assert is_string("LowCardinality(String)") and is_string("FixedString(3)")
    assert is_string("LowCardinality(Nullable(String))")
    assert not is_string("UUID") and not is_string("Array(String)")
