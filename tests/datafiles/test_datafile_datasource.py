""".datasource parse ↔ render: exact round trip of canonical files, fixed point for messy ones, errors with
line numbers, includes, and the same object from API form fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from tody.datafiles.datasource import (
    DatafileError,
    DatasourceFile,
    datasource_from_params,
    parse_datasource,
    render_datasource,
)
from tody.engine.ddl import Column, DDLError, Index, TableEngine

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "datafiles").glob("*.datasource"))


def test_there_are_fixtures():
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_canonical_fixtures_round_trip_exactly(path):
    text = path.read_text()
    ds = parse_datasource(text, filename=path.name)
    assert render_datasource(ds) == text
    assert parse_datasource(render_datasource(ds)) == ds


def test_parsed_fields():
    ds = parse_datasource((FIXTURES[0].parent / "events.datasource").read_text())
    assert ds.description.startswith("Raw product events sent by the web and mobile apps.\n\nOne row")
    assert ds.description.endswith("- `click`")
    assert ds.columns[0] == Column("timestamp", "DateTime", jsonpath="$.timestamp")
    assert ds.columns[4] == Column(
        "country", "LowCardinality(String)", jsonpath="$.geo.country", default="'unknown'"
    )
    assert ds.columns[-1].jsonpath == "$"
    assert ds.engine == TableEngine(
        "MergeTree",
        sorting_key="event, session_id, timestamp",
        partition_key="toYYYYMM(timestamp)",
        ttl="timestamp + toIntervalDay(60)",
    )
    assert ds.tokens == [("app_read", "READ"), ("ingest", "APPEND")]
    assert ds.tags == "product,web"
    assert ds.has_jsonpaths
    assert ds.sql_schema.startswith("`timestamp` DateTime `json:$.timestamp`, `session_id` String")

    shared = parse_datasource((FIXTURES[0].parent / "shared_forward.datasource").read_text())
    assert shared.shared_with == ["analytics", "analytics_staging"]
    assert shared.forward_query == "SELECT timestamp, toUUID(session_id) AS session_id, action"

    keys = parse_datasource((FIXTURES[0].parent / "keys_settings.datasource").read_text())
    assert keys.indexes[0] == Index("idx_url", "url", "bloom_filter(0.01)", 4)
    assert keys.indexes[-1] == Index("idx_status_set", "status", "set(100)", None)
    assert keys.engine.settings == "index_granularity=4096, ttl_only_drop_parts=1"

    kafka = parse_datasource((FIXTURES[0].parent / "kafka.datasource").read_text())
    assert kafka.extra == [
        ("KAFKA_CONNECTION_NAME", "my_connection"),
        ("KAFKA_TOPIC", '"events"'),
        ("KAFKA_GROUP_ID", "'events_group'"),
        ("KAFKA_AUTO_OFFSET_RESET", "earliest"),
    ]


MESSY = [
    # single quotes, bare values, two-space and tab indentation, comments, blank lines, inline DESCRIPTION
    """# a comment at the top
VERSION 2
DESCRIPTION Inline description

SCHEMA >
  `a` DateTime `json:$.a`,
  # a commented-out column
  `b`   LowCardinality( String )  `json:$.b`  DEFAULT   'x',

  c Nullable(Int64) json:$.c



ENGINE MergeTree
ENGINE_SORTING_KEY 'a, b'
ENGINE_PARTITION_KEY toYYYYMM(a)
ENGINE_TTL "a + INTERVAL 1 DAY"
TOKEN 'reader' read
TOKEN writer APPEND
TAGS 'x,y'
""",
    'SCHEMA >\n\t`a` String,\n\t`b` UInt8\nENGINE "ReplacingMergeTree"\nENGINE_VER b\n',
    # multi-line description with relative indentation and markdown headings; CRLF line endings
    "DESCRIPTION >\r\n        # Title\r\n\r\n        - item\r\n            - nested\r\n"
    "# comment\r\nSCHEMA >\r\n        `a` String\r\n",
    # an index block with continuation lines, SHARED_WITH on one line, a FORWARD_QUERY spanning lines
    """SCHEMA >
    `a` String, `b` UInt32
INDEXES >
    i1 a
        TYPE bloom_filter GRANULARITY 2
    i2 b TYPE minmax
SHARED_WITH ws1, ws2
FORWARD_QUERY >
    SELECT a,
      toUInt32(b) AS b
KAFKA_TOPIC >
    block value
ENGINE_SETTINGS index_granularity = 1024
""",
    # a value holding both quote characters, a multi-line DEFAULT, empty DESCRIPTION block
    """DESCRIPTION >

SCHEMA >
    `a` String DEFAULT concat('x',
        "y"),
    `b` String
ENGINE_TTL >
    toDate('2020-01-01') + INTERVAL 1 DAY
TAGS He said "it's"
""",
]


@pytest.mark.parametrize("text", MESSY)
def test_messy_input_reaches_a_fixed_point(text):
    first = parse_datasource(text)
    rendered = render_datasource(first)
    assert parse_datasource(rendered) == first
    assert render_datasource(parse_datasource(rendered)) == rendered


def test_messy_values():
    ds = parse_datasource(MESSY[0])
    assert ds.description == "Inline description"
    assert [c.name for c in ds.columns] == ["a", "b", "c"]
    assert ds.columns[1] == Column("b", "LowCardinality(String)", jsonpath="$.b", default="'x'")
    assert ds.columns[2].jsonpath == "$.c"
    assert ds.engine.sorting_key == "a, b"
    assert ds.engine.partition_key == "toYYYYMM(a)"
    assert ds.tokens == [("reader", "READ"), ("writer", "APPEND")]
    assert ds.tags == "x,y"
    assert ds.extra == [("VERSION", "2")]

    desc = parse_datasource(MESSY[2]).description
    assert desc == "# Title\n\n- item\n    - nested"

    ds = parse_datasource(MESSY[3])
    assert ds.indexes == [Index("i1", "a", "bloom_filter", 2), Index("i2", "b", "minmax")]
    assert ds.shared_with == ["ws1", "ws2"]
    assert ds.forward_query == "SELECT a,\n  toUInt32(b) AS b"
    assert ds.extra == [("KAFKA_TOPIC", ">\nblock value")]
    assert "KAFKA_TOPIC >\n    block value" in render_datasource(ds)

    ds = parse_datasource(MESSY[4])
    assert ds.description == ""
    assert ds.columns[0].default == "concat('x',\n    \"y\")"
    assert ds.engine.ttl == "toDate('2020-01-01') + INTERVAL 1 DAY"
    assert ds.tags == 'He said "it\'s"'


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("DESCRIPTION >\n    x\n", None, "SCHEMA is required"),
        ("SCHEMA >\n    `a` String,\n    `b` Strin\n", 3, "Unknown type 'Strin'"),
        ("SCHEMA >\n    `a` String,\n\n    `1b` String\n", 4, "starts with a digit"),
        ('SCHEMA >\n    `a` String\n  ENGINE "MergeTree"\n', None, None),
        ("SCHEMA >\n    `a` String\n\nengine x\n", 4, "instructions are written in uppercase: ENGINE"),
        ("SCHEMA >\n    `a` String\nSCHEMA >\n    `b` String\n", 3, "SCHEMA appears twice (first on line 1)"),
        ("SCHEMA >\n    `a` String\nENGINE_SORTING_KEYS a\n", 3, "unknown engine instruction"),
        ("SCHEMA >\n    `a` String\nTOKEN x WRITE\n", 3, "READ or APPEND"),
        ("SCHEMA >\n    `a` String\nTOKEN\n", 3, "TOKEN <name>"),
        ("SCHEMA >\n    `a` String\nINDEXES >\n    i a TYPE minmax GRANULARITY x\n", 4, "GRANULARITY"),
        ("SCHEMA >\n\nENGINE MergeTree\n", 1, "SCHEMA is empty"),
        ("SCHEMA >\n    `a` String\nENGINE\n", 3, "ENGINE needs a value"),
        ("  SCHEMA >\n    `a` String\n", 1, "unexpected indented line"),
        ("SCHEMA >\n    `a` String\n!!\n", 3, "expected an instruction"),
    ],
)
def test_errors_carry_line_numbers(text, line, message):
    if message is None:  # an indented instruction just continues the SCHEMA block, and fails there
        with pytest.raises(DatafileError) as err:
            parse_datasource(text)
        assert err.value.line == 3
        return
    with pytest.raises(DatafileError) as err:
        parse_datasource(text, filename="x.datasource")
    assert err.value.line == line
    assert message in str(err.value)
    assert str(err.value).startswith("x.datasource" + (f", line {line}" if line else ""))
    assert isinstance(err.value, DDLError)


def test_includes():
    files = {
        "kafka.incl": 'KAFKA_CONNECTION_NAME conn\nKAFKA_TOPIC "t"\n',
        "schema.incl": "SCHEMA >\n    `a` String,\n    `b` Strin\n",
        "loop.incl": 'INCLUDE "loop.incl"\n',
    }
    text = 'SCHEMA >\n    `a` String\n\nINCLUDE "kafka.incl"\n'
    ds = parse_datasource(text, include_loader=files.__getitem__)
    assert ds.extra == [("KAFKA_CONNECTION_NAME", "conn"), ("KAFKA_TOPIC", '"t"')]
    kept = parse_datasource(text)  # without a loader the INCLUDE line is kept as it is
    assert kept.extra == [("INCLUDE", '"kafka.incl"')]
    assert render_datasource(kept).endswith('INCLUDE "kafka.incl"\n')

    with pytest.raises(DatafileError) as err:
        parse_datasource('DESCRIPTION x\nINCLUDE "schema.incl"\n', include_loader=files.__getitem__)
    assert err.value.line == 2 and "schema.incl line 3" in str(err.value)
    with pytest.raises(DatafileError) as err:
        parse_datasource('INCLUDE "loop.incl"\n', include_loader=files.__getitem__)
    assert "nested too deeply" in str(err.value)
    with pytest.raises(DatafileError) as err:
        parse_datasource(
            'SCHEMA >\n    `a` String\nINCLUDE "missing.incl"\n', include_loader=files.__getitem__
        )
    assert err.value.line == 3 and "cannot read included file 'missing.incl'" in str(err.value)


def test_render_of_built_object():
    ds = DatasourceFile(
        columns=[
            Column("a", "String", jsonpath="$.a"),
            Column("b", "UInt8", default="1", default_kind="MATERIALIZED"),
        ],
        engine=TableEngine("ReplacingMergeTree", sorting_key="a", ver="b"),
        tokens=[("my token", "READ")],
        tags='a"b',
    )
    text = render_datasource(ds)
    assert text == (
        "SCHEMA >\n    `a` String `json:$.a`,\n    `b` UInt8 MATERIALIZED 1\n\n"
        'ENGINE "ReplacingMergeTree"\nENGINE_SORTING_KEY "a"\nENGINE_VER "b"\n\n'
        "TOKEN 'my token' READ\n\nTAGS 'a\"b'\n"
    )
    assert parse_datasource(text) == ds


def test_from_params_matches_the_datafile():
    ds = parse_datasource((FIXTURES[0].parent / "keys_settings.datasource").read_text())
    params = {
        "name": "x",
        "mode": "create",
        "format": "ndjson",
        "schema": ds.sql_schema,
        "engine": "MergeTree",
        "engine_partition_key": ds.engine.partition_key,
        "engine_sorting_key": ds.engine.sorting_key,
        "engine_primary_key": ds.engine.primary_key,
        "engine_sampling_key": ds.engine.sampling_key,
        "engine_ttl": ds.engine.ttl,
        "engine_settings": ds.engine.settings,
        "engine_ver": "",
        "indexes": "\n".join(
            f"{ix.name} {ix.expr} TYPE {ix.type}"
            + (f" GRANULARITY {ix.granularity}" if ix.granularity else "")
            for ix in ds.indexes
        ),
    }
    built = datasource_from_params(params)
    assert built.columns == ds.columns
    assert built.engine == ds.engine
    assert built.indexes == ds.indexes
    assert built.description is None

    params["indexes"] = params["indexes"].replace("\n", ", ")
    assert datasource_from_params(params).indexes == ds.indexes


def test_from_params_defaults_and_errors():
    built = datasource_from_params({"schema": "`a` String", "description": ""})
    assert built.engine == TableEngine() and built.description == ""
    assert datasource_from_params({}).columns == []
    with pytest.raises(DDLError) as err:
        datasource_from_params({"schema": "`a` Strng"})
    assert str(err.value).startswith("Invalid schema: Column 'a': Unknown type 'Strng'")
    with pytest.raises(DDLError) as err:
        datasource_from_params({"schema": "`a` String", "indexes": "i a"})
    assert str(err.value).startswith("Invalid indexes:")
