"""Schema → CREATE TABLE: every fixture lands on the real engine with its engine, keys, TTL and settings;
engine validation; the default sorting key; defence against text that tries to leave its slot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tody.datafiles.datasource import parse_datasource
from tody.engine.base import EngineError, quote_identifier
from tody.engine.ddl import (
    Column,
    DDLError,
    Index,
    TableEngine,
    create_table_sql,
    default_sorting_key,
    engine_full,
    parse_settings,
    validate_engine,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "datafiles"

# Lines SHOW CREATE TABLE must contain for each fixture (ClickHouse's own rendering).
EXPECTED = {
    "events": [
        "ENGINE = MergeTree",
        "PARTITION BY toYYYYMM(timestamp)",
        "ORDER BY (event, session_id, timestamp)",
        "TTL timestamp + toIntervalDay(60)",
        "`country` LowCardinality(String) DEFAULT 'unknown'",
    ],
    "replacing": ["ENGINE = ReplacingMergeTree(updated_at, deleted)", "ORDER BY user_id"],
    "summing": [
        "ENGINE = SummingMergeTree((visits, revenue))",
        "PARTITION BY toYear(day)",
        "ORDER BY (day, country)",
    ],
    "aggregating": [
        "ENGINE = AggregatingMergeTree",
        "`p90` AggregateFunction(quantiles(0.5, 0.9), Float64)",
        "`last_seen` SimpleAggregateFunction(max, DateTime)",
    ],
    "collapsing": ["ENGINE = CollapsingMergeTree(sign)", "ORDER BY session_id"],
    "versioned_collapsing": ["ENGINE = VersionedCollapsingMergeTree(sign, version)", "ORDER BY account_id"],
    "null": ["ENGINE = `Null`"],
    "keys_settings": [
        "PARTITION BY toYYYYMM(ts)",
        "PRIMARY KEY (tenant_id, toDate(ts), intHash32(user_id))",
        "ORDER BY (tenant_id, toDate(ts), intHash32(user_id), url)",
        "SAMPLE BY intHash32(user_id)",
        "TTL toDateTime(ts) + toIntervalDay(90)",
        "SETTINGS index_granularity = 4096, ttl_only_drop_parts = 1",
        "INDEX idx_url url TYPE bloom_filter(0.01) GRANULARITY 4",
        "INDEX idx_url_tokens lower(url) TYPE tokenbf_v1(512, 3, 0) GRANULARITY 2",
        "INDEX idx_status_set status TYPE set(100) GRANULARITY 1",
    ],
    "types": [
        "ORDER BY id",
        "`created` DateTime64(3, 'Europe/Madrid') DEFAULT now64(3)",
        "`created_day` Date MATERIALIZED toDate(created)",
        "`amount` Decimal(18, 4) CODEC(ZSTD(1))",
        "`counter` UInt64 DEFAULT 0 CODEC(Delta(8), LZ4)",
        "`name_len` UInt64 ALIAS length(ifNull(name, ''))",
        "`point` Tuple(\n        lat Float64,\n        lon Float64)",
    ],
    "shared_forward": ["ORDER BY (session_id, timestamp)"],
    "kafka": ["PARTITION BY toYYYYMM(__timestamp)", "ORDER BY __timestamp"],
}


def show_create(engine, database: str, table: str) -> str:
    sql = f"SHOW CREATE TABLE {quote_identifier(database)}.{quote_identifier(table)}"
    return engine.execute(sql, fmt="TabSeparatedRaw").data.decode()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_creates_its_table(engine, database, name):
    ds = parse_datasource((FIXTURES / f"{name}.datasource").read_text())
    sql = create_table_sql(database, name, ds.columns, ds.engine, ds.indexes)
    engine.execute(sql)
    created = show_create(engine, database, name)
    for line in EXPECTED[name]:
        assert line in created, f"{line!r} not in\n{created}"
    assert "allow_nullable_key" not in created
    # the display form starts with the same engine
    validated = validate_engine(ds.columns, ds.engine)
    assert re.match(r"\w+", engine_full(validated)).group() == validated.engine


def test_every_fixture_is_covered():
    assert {p.name.removesuffix(".datasource") for p in FIXTURES.glob("*.datasource")} == set(EXPECTED)


def test_create_table_sql_shape():
    cols = [Column("ts", "DateTime"), Column("user", "String", default="'anon'", codec="ZSTD(1)")]
    sql = create_table_sql(
        "db", "t", cols, TableEngine(), [Index("i", "user", "bloom_filter", 4)], if_not_exists=True
    )
    assert sql == (
        "CREATE TABLE IF NOT EXISTS `db`.`t`\n(\n"
        "    `ts` DateTime,\n"
        "    `user` String DEFAULT 'anon' CODEC(ZSTD(1)),\n"
        "    INDEX `i` user TYPE bloom_filter GRANULARITY 4\n"
        ")\nENGINE = MergeTree\nORDER BY ts"
    )


def test_engine_full_display():
    cols = [Column("d", "Date"), Column("a", "String"), Column("v", "UInt64"), Column("x", "UInt8")]
    eng = TableEngine(
        "replacingmergetree",
        sorting_key="a, d",
        partition_key="toYYYYMM(d)",
        ttl="d + INTERVAL 1 DAY",
        ver="v",
        is_deleted="x",
        settings="index_granularity=1024,ttl_only_drop_parts = true",
    )
    assert engine_full(validate_engine(cols, eng)) == (
        "ReplacingMergeTree(v, x) PARTITION BY toYYYYMM(d) ORDER BY (a, d) TTL d + INTERVAL 1 DAY "
        "SETTINGS index_granularity = 1024, ttl_only_drop_parts = true"
    )
    assert engine_full(TableEngine("Null")) == "Null"
    assert engine_full(TableEngine(sorting_key="tuple()")) == "MergeTree ORDER BY tuple()"


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ("a String, b UInt32, c DateTime64(3)", "c"),
        ("a String, b Nullable(DateTime), c Float64, d Int8", "c"),
        ("a LowCardinality(String), b Array(UInt8)", "a"),
        ("a Array(String), b Map(String, String)", "tuple()"),
        ("a Nullable(String)", "tuple()"),
        ("a Date, b DateTime", "a"),
        ("a UInt64 ALIAS 1, b Decimal(10, 2)", "b"),
    ],
)
def test_default_sorting_key(columns, expected):
    from tody.datafiles.schema import parse_schema

    cols = parse_schema(columns)
    assert default_sorting_key(cols) == expected
    assert validate_engine(cols, TableEngine()).sorting_key == expected


ENGINE_ERRORS = [
    (
        TableEngine("ReplacingMergeTree", ver="missing"),
        "ENGINE_VER of ReplacingMergeTree: column 'missing' does not exist",
    ),
    (TableEngine("ReplacingMergeTree", ver="s"), "column 's' is String; it must be a number or a date"),
    (TableEngine("ReplacingMergeTree", ver="n_ver"), "is Nullable(UInt64)"),
    (TableEngine("ReplacingMergeTree", is_deleted="flag"), "needs ENGINE_VER too"),
    (
        TableEngine("ReplacingMergeTree", ver="v", is_deleted="v"),
        "ENGINE_IS_DELETED of ReplacingMergeTree: column 'v' is UInt64",
    ),
    (TableEngine("CollapsingMergeTree"), "CollapsingMergeTree needs ENGINE_SIGN"),
    (
        TableEngine("CollapsingMergeTree", sign="v"),
        "ENGINE_SIGN of CollapsingMergeTree: column 'v' is UInt64; it must be Int8",
    ),
    (TableEngine("VersionedCollapsingMergeTree", sign="sign"), "needs ENGINE_VERSION"),
    (TableEngine("VersionedCollapsingMergeTree", sign="sign", version="s"), "must be numeric"),
    (
        TableEngine("SummingMergeTree", summing_columns="v, s"),
        "ENGINE_SUMMING_COLUMNS of SummingMergeTree: column 's'",
    ),
    (TableEngine("SummingMergeTree", summing_columns="nope"), "does not exist"),
    (TableEngine("Null", sorting_key="d"), "The Null engine stores nothing and takes no ENGINE_SORTING_KEY"),
    (TableEngine("Null", ttl="d", settings="index_granularity=1"), "takes no ENGINE_TTL, ENGINE_SETTINGS"),
    (TableEngine("MergeTree", ver="v"), "ENGINE_VER only applies to ReplacingMergeTree, not MergeTree"),
    (TableEngine("Memory"), "Unknown engine 'Memory'"),
    (TableEngine("ReplicatedMergeTree('/x', 'y')"), "Unknown engine"),
    (TableEngine(settings="storage_policy='s3'"), "setting 'storage_policy' is not allowed"),
    (TableEngine(settings="parts_to_throw_insert=1000000"), "not allowed"),
    (TableEngine(settings="index_granularity=(SELECT 1)"), "needs a plain number"),
    (TableEngine(settings="index_granularity"), "expected key=value"),
    (TableEngine(settings="index_granularity=1, index_granularity=2"), "appears twice"),
]


@pytest.mark.parametrize(("eng", "message"), ENGINE_ERRORS)
def test_engine_validation_errors(eng, message):
    cols = [
        Column("d", "Date"),
        Column("s", "String"),
        Column("v", "UInt64"),
        Column("n_ver", "Nullable(UInt64)"),
        Column("flag", "UInt8"),
        Column("sign", "Int8"),
    ]
    with pytest.raises(DDLError) as err:
        validate_engine(cols, eng)
    assert message in str(err.value)


def test_validate_engine_normalises():
    cols = [Column("v", "UInt64"), Column("d", "DateTime"), Column("x", "Bool"), Column("n", "Float64")]
    eng = validate_engine(cols, TableEngine("ReplacingMergeTree", ver="`v`", is_deleted="x"))
    assert eng == TableEngine("ReplacingMergeTree", sorting_key="d", ver="v", is_deleted="x")
    assert validate_engine(cols, TableEngine("MergeTree()")).engine == "MergeTree"
    eng = validate_engine(cols, TableEngine("SummingMergeTree", summing_columns="(v, `n`)"))
    assert eng.summing_columns == "v, n"
    assert parse_settings("deduplicate_merge_projection_mode = rebuild, index_granularity=-0") == [
        ("deduplicate_merge_projection_mode", "'rebuild'"),
        ("index_granularity", "-0"),
    ]


def test_nullable_key_gets_allow_nullable_key(engine, database):
    cols = [Column("k", "Nullable(String)"), Column("d", "Date")]
    eng = TableEngine(sorting_key="k, d")
    engine.execute(create_table_sql(database, "t", cols, eng))
    assert "allow_nullable_key = 1" in show_create(engine, database, "t")
    assert "allow_nullable_key" not in engine_full(validate_engine(cols, eng))
    # an explicit choice is kept as it is
    eng = TableEngine(partition_key="k", sorting_key="d", settings="allow_nullable_key=1")
    sql = create_table_sql(database, "t2", cols, eng)
    assert sql.count("allow_nullable_key") == 1
    engine.execute(sql)


@pytest.mark.parametrize(
    ("eng", "columns", "message"),
    [
        (TableEngine(sorting_key="a) ENGINE = File(CSV, '/etc/passwd') --"), None, "unbalanced ')'"),
        (TableEngine(sorting_key="a SETTINGS allow_nullable_key=1"), None, "keyword SETTINGS"),
        (TableEngine(sorting_key="a; DROP TABLE x"), None, "';'"),
        (TableEngine(sorting_key="a -- comment"), None, "comments"),
        (TableEngine(sorting_key="a /* x */"), None, "comments"),
        (TableEngine(sorting_key="a # x"), None, "comments"),
        (TableEngine(sorting_key="a AS SELECT * FROM file('/etc/passwd')"), None, "keyword AS"),
        (TableEngine(sorting_key="a TTL a + 1"), None, "keyword TTL"),
        (TableEngine(sorting_key="$$a$$"), None, "'$'"),
        (TableEngine(sorting_key="f('unterminated)"), None, "Unterminated string"),
        (TableEngine(partition_key="(a"), None, "unclosed '('"),
        (TableEngine(ttl="a + INTERVAL 1 DAY SETTINGS x = 1"), None, "keyword SETTINGS"),
        (TableEngine(ttl="a + 1 FORMAT JSON"), None, "keyword FORMAT"),
        (TableEngine(ttl="a + INTERVAL 1 DAY TO DISK 'other'"), None, "keyword TO"),
        (None, [Column("a", "String", default="'x', `b` UInt8")], "single expression"),
        (None, [Column("a", "String", default="'x') ENGINE = Memory --")], "unbalanced"),
        (None, [Column("a", "String", default="'x' CODEC(NONE)")], "keyword CODEC"),
        (
            None,
            [Column("a", "String", default="1", default_kind="EPHEMERAL")],
            "DEFAULT, MATERIALIZED or ALIAS",
        ),
        (None, [Column("a", "String", codec="ZSTD(1)) ENGINE = Memory AS SELECT (1")], "unbalanced"),
        (None, [Column("a", "String", codec="AES_128_GCM_SIV")], "is not supported"),
        (None, [Column("a", "String", codec="ZSTD(level)")], "arguments must be literals"),
        (None, [Column("a", "String) ENGINE = Memory --")], "unexpected text in type"),
        (None, [Column("a", "String, `b` UInt8")], "unexpected"),
        (None, [Column("a", "file('x')")], "not a supported ClickHouse type"),
        (None, [Column("a", "String"), Column("a", "UInt8")], "appears twice"),
    ],
)
def test_text_cannot_leave_its_slot(eng, columns, message):
    with pytest.raises(DDLError) as err:
        create_table_sql("db", "t", columns or [Column("a", "String")], eng or TableEngine())
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (Index("i", "a", "file('x')"), "is not supported"),
        (Index("i", "a", "minmax GRANULARITY 1) ENGINE = Memory --"), "unbalanced"),
        (Index("i", "a", "minmax, set(1)"), "expected one item"),
        (Index("i", "a", "bloom_filter(x)"), "arguments must be literals"),
        (Index("i", "a) ENGINE = Memory --", "minmax"), "unbalanced"),
        (Index("i", "a, b", "minmax"), "single expression"),
        (Index("i x", "a", "minmax"), "index names"),
        (Index("i", "a", "minmax", 0), "GRANULARITY"),
    ],
)
def test_index_checks(index, message):
    with pytest.raises(DDLError) as err:
        create_table_sql("db", "t", [Column("a", "String")], TableEngine(), [index])
    assert message in str(err.value)


def test_backtick_games_stay_names(engine, database):
    """Identifiers are always backtick-quoted and escaped, so even names that slipped past the schema
    validation cannot inject anything: they are names, and the table is created as written."""
    weird = "a` String, `b` UInt8) ENGINE = Memory --"
    sql = create_table_sql(database, "x` (y", [Column(weird, "String")], TableEngine(sorting_key="tuple()"))
    engine.execute(sql)
    cols = engine.execute(
        f"SELECT name FROM system.columns WHERE database = '{database}' AND table = 'x` (y'",
        fmt="TabSeparatedRaw",
    ).data.decode()
    assert cols.strip() == weird
    assert re.search(r"ENGINE = MergeTree", show_create(engine, database, "x` (y"))


def test_engine_rejects_what_validation_cannot_see(engine, database):
    """Unknown columns in keys are the engine's to report (the SQL gate checks them upstream)."""
    sql = create_table_sql(database, "t", [Column("a", "String")], TableEngine(sorting_key="nope"))
    with pytest.raises(EngineError):
        engine.execute(sql)
