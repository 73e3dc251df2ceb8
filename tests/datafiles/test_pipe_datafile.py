""".pipe parse ↔ render: exact round trip of canonical files, fixed point for messy ones, errors with line
numbers, INCLUDE with variables, and the same object from the JSON body `tb push` sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tody.datafiles.datasource import DatafileError
from tody.datafiles.pipe import NodeFile, PipeFile, parse_pipe, pipe_from_api, render_pipe

FIXTURES_DIR = Path(__file__).parents[1] / "fixtures" / "pipes"
FIXTURES = sorted(FIXTURES_DIR.glob("*.pipe"))
PROJECT = FIXTURES_DIR / "project" / "endpoints"


def load(name: str) -> PipeFile:
    return parse_pipe((FIXTURES_DIR / name).read_text(), filename=name)


def loader_from(files: dict[str, str]):
    def loader(path: str) -> str:
        return files[path]

    return loader


def test_there_are_fixtures():
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_canonical_fixtures_round_trip_exactly(path):
    text = path.read_text()
    pipe = parse_pipe(text, filename=path.name)
    assert render_pipe(pipe) == text
    assert parse_pipe(render_pipe(pipe)) == pipe


def test_endpoint_with_template():
    pipe = load("top_pages_endpoint.pipe")
    assert pipe.description == "Top pages by views, for the dashboard."
    assert pipe.tokens == [("dashboard", "READ")]
    (node,) = pipe.nodes
    assert node.name == "endpoint"
    assert node.description == "Views per page in a date range"
    assert node.type == "endpoint"
    assert node.sql.startswith("%\nSELECT pathname, count() AS views\nFROM page_views\n")
    assert node.sql.endswith("LIMIT {{Int32(limit, 10)}}")
    assert pipe.output_node is node


def test_chained_and_untyped():
    chained = load("chained.pipe")
    assert [n.name for n in chained.nodes] == ["filtered", "aggregated"]
    assert chained.nodes[0].type is None
    assert chained.output_node is chained.nodes[1]
    untyped = load("no_type.pipe")
    assert all(n.type is None for n in untyped.nodes)
    assert untyped.output_node is None


def test_classic_uppercase_type_is_normalised_and_spelled_back():
    pipe = load("classic_endpoint.pipe")
    assert pipe.nodes[-1].type == "endpoint"
    assert pipe.nodes[0].type is None
    assert "TYPE ENDPOINT\n" in render_pipe(pipe)
    pipe.nodes[-1].type = "copy"  # a changed value is written canonically, not with the stale spelling
    pipe.nodes[-1].target_datasource = "t"
    assert "TYPE copy\nTARGET_DATASOURCE t\n" in render_pipe(pipe)


def test_materialized_copy_sink_fields():
    mv = load("materialized.pipe").output_node
    assert (mv.type, mv.datasource) == ("materialized", "mv_top_per_day")
    assert mv.engine == {
        "ENGINE": "AggregatingMergeTree",
        "ENGINE_PARTITION_KEY": "toYYYYMM(date)",
        "ENGINE_SORTING_KEY": "date",
    }
    copy = load("copy_hourly.pipe").output_node
    assert (copy.type, copy.target_datasource, copy.copy_schedule, copy.copy_mode) == (
        "copy",
        "sales_hourly",
        "0 * * * *",
        "replace",
    )
    sink = load("sink.pipe").output_node
    assert sink.type == "sink"
    assert sink.extra[0] == ("EXPORT_CONNECTION_NAME", '"landing_s3"')
    assert sink.extra[-1] == ("EXPORT_SCHEDULE", '"0 * * * *"')


def test_tokens_cache_tags():
    pipe = load("tokens_cache_tags.pipe")
    assert pipe.tokens == [("dashboard", "READ"), ("mobile app", "READ"), ("partner", "READ")]
    assert pipe.cache == 60
    assert pipe.tags == "public,counters"
    pipe.tokens.append(("new", "READ"))
    assert 'TOKEN "partner" READ\nTOKEN new READ\n' in render_pipe(pipe)


def test_descriptions_and_sql_shapes():
    pipe = load("descriptions.pipe")
    assert pipe.description.startswith("# Sessions\n\nLong description")
    assert pipe.description.endswith("- `duration` is in seconds")
    assert pipe.nodes[0].description == "Sessions, one row each.\n\n  Indented detail kept as written."
    assert pipe.nodes[1].description == "## Output\nSessions longer than a minute."
    sql = load("sql_shapes.pipe").nodes[0].sql
    assert sql.startswith("%\n{% set tables")
    assert "    '# not a comment' AS hash_in_string," in sql
    assert "\n# a ClickHouse comment, indented, so part of the SQL\n" in sql
    assert "FROM numbers(1)\n\nWHERE 1 = 1\n{% for t in tables %}\n    {% if t == 'events' %}" in sql
    assert "{% end %}\n\n\nLIMIT" in sql


# ---------------------------------------------------------------------------------------------------
# Messy but valid input: parse(render(parse(x))) == parse(x)

MESSY = [
    # comments, TYPE at the end after blank lines, lowercase/uppercase mix, two-space indentation
    """# top comment
DESCRIPTION Inline pipe description
TOKEN 'reader' read

NODE a
  # a comment line inside the node
SQL >
  SELECT 1 AS x
# a column-0 comment inside the block is dropped
  UNION ALL SELECT 2

NODE b
DESCRIPTION "inline node description"
SQL >
	SELECT x FROM a
	WHERE x > 0



TYPE Endpoint
CACHE "30"
""",
    # TYPE inside the node before SQL, TAGS and TOKEN after the nodes, quoted values, CRLF endings
    'NODE mv\r\nTYPE MATERIALIZED\r\nDATASOURCE "target_ds"\r\nSQL >\r\n    SELECT a, countState() AS c\r\n'
    "    FROM src GROUP BY a\r\nENGINE AggregatingMergeTree\r\nENGINE_SORTING_KEY a\r\n\r\n"
    'TAGS "x"\r\nTOKEN "t1" READ\r\n',
    # SQL written at column 0 (as in some of Tinybird's examples) ends at an instruction
    """NODE n
SQL >
SELECT a
FROM t
WHERE b = 1
TYPE COPY
TARGET_DATASOURCE out
COPY_SCHEDULE "@on-demand"
COPY_MODE APPEND
""",
    # column-0 SQL ends at a blank line followed by a non-indented line; inline SQL; TYPE standard
    """NODE first
SQL >
SELECT 1

NODE second
SQL SELECT * FROM first
TYPE standard
VERSION 2
DEPLOYMENT_METHOD alter
""",
    # trailing spaces, block DESCRIPTION with a markdown heading, TYPE sink with block extra
    "NODE s   \nDESCRIPTION >\n    # Heading\n    text   \nSQL >\n        SELECT 1   \n\n"
    "TYPE sink\nEXPORT_FILE_TEMPLATE >\n    a_{date}\nEXPORT_FORMAT csv\n",
]


@pytest.mark.parametrize("text", MESSY)
def test_messy_input_reaches_a_fixed_point(text):
    pipe = parse_pipe(text)
    rendered = render_pipe(pipe)
    assert parse_pipe(rendered) == pipe
    assert render_pipe(parse_pipe(rendered)) == rendered


def test_messy_values():
    one = parse_pipe(MESSY[0])
    assert one.description == "Inline pipe description"
    assert one.tokens == [("reader", "READ")]
    assert one.nodes[0].sql == "SELECT 1 AS x\nUNION ALL SELECT 2"
    assert one.nodes[1].description == "inline node description"
    assert one.nodes[1].sql == "SELECT x FROM a\nWHERE x > 0"
    assert (one.nodes[1].type, one.cache) == ("endpoint", 30)
    rendered = render_pipe(one)
    assert rendered.startswith(
        "DESCRIPTION Inline pipe description\n\nTOKEN 'reader' read\n\nNODE a\nSQL >\n"
    )
    assert rendered.endswith('\n\nTYPE Endpoint\nCACHE "30"\n')

    two = parse_pipe(MESSY[1])
    node = two.nodes[0]
    assert (node.type, node.datasource, node.sql) == (
        "materialized",
        "target_ds",
        "SELECT a, countState() AS c\nFROM src GROUP BY a",
    )
    assert node.engine == {"ENGINE": "AggregatingMergeTree", "ENGINE_SORTING_KEY": "a"}
    assert (two.tags, two.tokens) == ("x", [("t1", "READ")])

    three = parse_pipe(MESSY[2]).nodes[0]
    assert three.sql == "SELECT a\nFROM t\nWHERE b = 1"
    assert (three.type, three.copy_schedule, three.copy_mode) == ("copy", "@on-demand", "append")

    four = parse_pipe(MESSY[3])
    assert [n.sql for n in four.nodes] == ["SELECT 1", "SELECT * FROM first"]
    assert four.nodes[1].type is None and four.output_node is None
    assert four.extra == [("VERSION", "2")]
    assert four.nodes[1].extra == [("DEPLOYMENT_METHOD", "alter")]
    assert "TYPE standard\nDEPLOYMENT_METHOD alter\n" in render_pipe(four)

    five = parse_pipe(MESSY[4]).nodes[0]
    assert (five.name, five.description, five.sql) == ("s", "# Heading\ntext", "SELECT 1")
    assert five.extra == [("EXPORT_FILE_TEMPLATE", ">\na_{date}"), ("EXPORT_FORMAT", "csv")]


def test_built_pipe_renders_canonically():
    pipe = PipeFile(
        nodes=[
            NodeFile("a", "SELECT 1", description="first"),
            NodeFile("b", "SELECT * FROM a", type="copy", target_datasource="t", copy_schedule="@on-demand"),
        ],
        tokens=[("r", "READ")],
        tags="k",
    )
    assert render_pipe(pipe) == (
        'TOKEN r READ\n\nTAGS "k"\n\nNODE a\nDESCRIPTION >\n    first\nSQL >\n    SELECT 1\n\n'
        "NODE b\nSQL >\n    SELECT * FROM a\n\nTYPE copy\nTARGET_DATASOURCE t\nCOPY_SCHEDULE @on-demand\n"
    )
    assert parse_pipe(render_pipe(pipe)) == pipe


# ---------------------------------------------------------------------------------------------------
# Errors

ERRORS = [
    ("NODE a\nDESCRIPTION >\n    no sql here\n\nNODE b\nSQL >\n    SELECT 1\n", 1, "node 'a' has no SQL"),
    (
        "NODE a\nSQL >\n    SELECT 1\n\nNODE a\nSQL >\n    SELECT 2\n",
        5,
        "node 'a' is defined twice (first on line 1)",
    ),
    (
        "NODE a\nSQL >\n    SELECT 1\nTYPE endpoint\n\nNODE b\nSQL >\n    SELECT 2\n\nTYPE COPY\nTARGET_DATASOURCE t\n",
        10,
        "a pipe has one output: node 'b' has TYPE copy, but node 'a' already has TYPE endpoint (line 4)",
    ),
    ("NODE a\nSQL >\n    SELECT 1\n\nSCHEMA >\n    `a` Int8\n", 5, "unknown instruction SCHEMA"),
    ("FOO bar\nNODE a\nSQL >\n    SELECT 1\n", 1, "FOO is not a pipe instruction"),
    ("NODE 1abc\nSQL >\n    SELECT 1\n", 1, "invalid node name '1abc'"),
    ("NODE my-node\nSQL >\n    SELECT 1\n", 1, "invalid node name 'my-node'"),
    ("NODE\nSQL >\n    SELECT 1\n", 1, "invalid node name ''"),
    ("DESCRIPTION >\n    nothing else\n", None, "a pipe needs at least one node"),
    ("TYPE endpoint\nNODE a\nSQL >\n    SELECT 1\n", 1, "TYPE belongs to a node"),
    ("NODE a\nSQL >\n    SELECT 1\nTYPE api\n", 4, "unknown TYPE 'api'"),
    ("NODE a\nSQL >\n\nTYPE endpoint\n", 2, "the SQL of node 'a' is empty"),
    (
        "NODE a\nSQL >\n    SELECT 1\nSQL >\n    SELECT 2\n",
        4,
        "SQL appears twice in node 'a' (first on line 2)",
    ),
    ("NODE a\n    SELECT 1\n", 2, "unexpected indented line"),
    ("node a\nSQL >\n    SELECT 1\n", 1, "instructions are written in uppercase: NODE"),
    ("NODE a\nSQL >\n    SELECT 1\n\nTYPE materialized\n", 5, "TYPE materialized needs DATASOURCE"),
    ("NODE a\nSQL >\n    SELECT 1\n\nTYPE copy\n", 5, "TYPE copy needs TARGET_DATASOURCE"),
    (
        "NODE a\nSQL >\n    SELECT 1\nTYPE copy\nTARGET_DATASOURCE t\nCOPY_MODE upsert\n",
        6,
        "COPY_MODE must be",
    ),
    ("NODE a\nSQL >\n    SELECT 1\nCACHE soon\n", 4, "CACHE takes a number of seconds"),
    ('TOKEN "w" APPEND\nNODE a\nSQL >\n    SELECT 1\n', 1, "pipe tokens can only be READ"),
    ("NODE a\nSQL >\n    SELECT 1\nENGINE_ORDER x\n", 4, "unknown engine instruction ENGINE_ORDER"),
    ("NODE a\nSQL >\n    SELECT 1\nDATASOURCE\n", 4, "DATASOURCE needs a value"),
    (
        "DESCRIPTION a\nDESCRIPTION b\nNODE a\nSQL >\n    SELECT 1\n",
        2,
        "DESCRIPTION appears twice in the pipe",
    ),
    ("TAGS a\nNODE a\nSQL >\n    SELECT 1\nTAGS b\n", 5, "TAGS appears twice in the pipe (first on line 1)"),
    ("NODE a\nSQL >\n    SELECT 1\nTYPE endpoint\n    stray\n", 5, "unexpected indented line"),
    ('INCLUDE "x.incl"\n', 1, "no include loader was given"),
    ("EXPORT_FORMAT csv\nNODE a\nSQL >\n    SELECT 1\n", 1, "EXPORT_FORMAT belongs to a node"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors_carry_line_numbers(text, line, message):
    with pytest.raises(DatafileError) as info:
        parse_pipe(text, filename="p.pipe")
    assert info.value.line == line
    assert message in info.value.reason
    assert str(info.value).startswith("p.pipe, line " if line else "p.pipe: ")


# ---------------------------------------------------------------------------------------------------
# INCLUDE


def test_include_fixture_expands_to_the_canonical_file():
    pipe = parse_pipe(
        (PROJECT / "top_products_last_week.pipe").read_text(),
        include_loader=lambda path: (PROJECT / path).read_text(),
    )
    assert render_pipe(pipe) == (FIXTURES_DIR / "top_products_last_week.pipe").read_text()
    endpoint = pipe.output_node
    assert endpoint.description == "Top products, last week"
    assert "topKMerge(10)(top_10)" in endpoint.sql
    assert "{% if 'last_week' == 'last_week' %}" in endpoint.sql
    assert endpoint.sql.endswith("-- $UNKNOWN stays, $ is a dollar, $.path stays")


def test_include_variable_rules():
    files = {
        "n.incl": "NODE $NAME\nSQL >\n    SELECT '${V}x', '$Vx', '$$V', '$.a', $1, '$OTHER' FROM ${TABLE}\n",
    }
    pipe = parse_pipe(
        'INCLUDE "n.incl" NAME=inc "V=va lue" TABLE="my table"\n\nTYPE endpoint\n',
        include_loader=loader_from(files),
    )
    (node,) = pipe.nodes
    assert node.name == "inc"
    assert node.sql == "SELECT 'va luex', '$Vx', '$V', '$.a', $1, '$OTHER' FROM my table"
    assert node.type == "endpoint"  # TYPE after the INCLUDE belongs to the included node


def test_include_variables_do_not_leak_and_can_be_forwarded():
    files = {
        "outer.incl": 'INCLUDE "inner.incl" "A=$A-outer"\nNODE outer_$A\nSQL >\n    SELECT 1\n',
        "inner.incl": "NODE inner\nSQL >\n    SELECT '$A', '$B'\n",
    }
    pipe = parse_pipe(
        "INCLUDE \"outer.incl\" A=x B=y\n\nNODE main\nSQL >\n    SELECT '$A'\n",
        include_loader=loader_from(files),
    )
    assert [n.name for n in pipe.nodes] == ["inner", "outer_x", "main"]
    assert pipe.nodes[0].sql == "SELECT 'x-outer', '$B'"
    assert pipe.nodes[2].sql == "SELECT '$A'"


def test_include_can_bring_pipe_level_instructions():
    files = {"common.incl": 'TOKEN shared READ\nTAGS "team"\n'}
    pipe = parse_pipe(
        'INCLUDE "common.incl"\nNODE a\nSQL >\n    SELECT 1\n', include_loader=loader_from(files)
    )
    assert (pipe.tokens, pipe.tags) == ([("shared", "READ")], "team")
    assert "INCLUDE" not in render_pipe(pipe)


def test_include_errors():
    with pytest.raises(DatafileError) as info:
        parse_pipe('NODE a\nSQL >\n    SELECT 1\n\nINCLUDE "missing.incl"\n', include_loader=loader_from({}))
    assert info.value.line == 5
    assert "cannot read included file 'missing.incl'" in info.value.reason

    with pytest.raises(DatafileError) as info:
        parse_pipe('INCLUDE "x.incl"\n', include_loader=lambda p: (PROJECT / "nope" / p).read_text())
    assert info.value.line == 1 and "No such file or directory" in info.value.reason

    # an error inside an included file points at the INCLUDE line and names the include's own line
    files = {"bad.incl": "NODE ok\nSQL >\n    SELECT 1\nBOGUS x\n"}
    with pytest.raises(DatafileError) as info:
        parse_pipe('# comment\nINCLUDE "bad.incl"\n', include_loader=loader_from(files))
    assert info.value.line == 2
    assert info.value.reason == "unknown instruction BOGUS (in bad.incl line 4)"

    with pytest.raises(DatafileError, match="nested too deeply"):
        parse_pipe(
            'INCLUDE "self.incl"\n', include_loader=loader_from({"self.incl": 'INCLUDE "self.incl"\n'})
        )
    with pytest.raises(DatafileError, match="NAME=value, got 'oops'") as info:
        parse_pipe('\nINCLUDE "x.incl" oops\n', include_loader=loader_from({"x.incl": ""}))
    assert info.value.line == 2
    with pytest.raises(DatafileError, match="INCLUDE needs a file name"):
        parse_pipe("INCLUDE\n", include_loader=loader_from({}))
    with pytest.raises(DatafileError, match="cannot read the INCLUDE arguments"):
        parse_pipe('INCLUDE "x.incl\n', include_loader=loader_from({}))


# ---------------------------------------------------------------------------------------------------
# API body


def cli_node(name, sql, **kw):
    node = {
        "name": name,
        "sql": sql,
        "type": "standard",
        "description": "",
        "target_datasource": None,
        "copy_schedule": None,
        "mode": "append",
        "export_params": None,
    }
    node.update(kw)
    return node


def test_pipe_from_api_matches_the_datafile():
    file_pipe = load("chained.pipe")
    body = {
        "name": "chained",
        "description": "",
        "nodes": [
            cli_node("filtered", file_pipe.nodes[0].sql),
            cli_node("aggregated", file_pipe.nodes[1].sql, type="endpoint"),
        ],
    }
    assert pipe_from_api(body) == file_pipe

    mv_file = load("materialized.pipe")
    mv = mv_file.nodes[1]
    body = {
        "name": "mv",
        "description": mv_file.description,
        "nodes": [
            cli_node("only_buy_events", mv_file.nodes[0].sql, type=None),
            cli_node(
                "top_per_day",
                mv.sql,
                type="materialized",
                datasource="mv_top_per_day",
                engine="AggregatingMergeTree",
                engine_partition_key="toYYYYMM(date)",
                engine_sorting_key="date",
                engine_ttl="",
            ),
        ],
    }
    assert pipe_from_api(body) == mv_file


def test_pipe_from_api_copy_and_types():
    copy_file = load("copy_hourly.pipe")
    body = {
        "name": "copy_hourly",
        "description": copy_file.description,
        "target_datasource": "sales_hourly",
        "schedule_cron": None,
        "nodes": [
            cli_node(
                "sales_per_hour",
                copy_file.nodes[0].sql,
                type="copy",
                copy_schedule="0 * * * *",
                mode="replace",
            )
        ],
    }
    assert pipe_from_api(body) == copy_file

    pipe = pipe_from_api(
        {"nodes": [{"name": "a", "sql": "SELECT 1", "type": "default"}, {"name": "b", "sql": "SELECT 2"}]}
    )
    assert [n.type for n in pipe.nodes] == [None, None]
    assert pipe.nodes[0].copy_mode is None
    assert (
        pipe_from_api({"nodes": [{"name": "a", "sql": "SELECT 1", "type": "ENDPOINT"}]}).output_node.name
        == "a"
    )
    # the checker pipe: every node standard, the MV node still carries its target and engine
    checker = pipe_from_api(
        {"nodes": [cli_node("m", "SELECT 1", datasource="ds", engine_sorting_key="a")]}
    ).nodes[0]
    assert (checker.type, checker.datasource, checker.engine) == (None, "ds", {"ENGINE_SORTING_KEY": "a"})
    assert parse_pipe(render_pipe(pipe_from_api(body))) == copy_file


API_ERRORS = [
    ([], "the request body must be a JSON object"),
    ({"name": "p"}, "body.nodes must be a non-empty list"),
    ({"nodes": []}, "body.nodes must be a non-empty list"),
    ({"nodes": ["SELECT 1"]}, "nodes[0] must be an object"),
    ({"nodes": [{"sql": "SELECT 1"}]}, "nodes[0].name is required"),
    ({"nodes": [{"name": 3, "sql": "SELECT 1"}]}, "nodes[0].name must be a string, not int"),
    ({"nodes": [{"name": "a b", "sql": "SELECT 1"}]}, "nodes[0].name 'a b' is not a valid node name"),
    ({"nodes": [{"name": "a", "sql": "  "}]}, "nodes[0].sql (node 'a') is empty"),
    ({"nodes": [{"name": "a"}]}, "nodes[0].sql is required"),
    ({"nodes": [{"name": "a", "sql": "SELECT 1", "type": "api"}]}, "nodes[0].type: unknown TYPE 'api'"),
    (
        {"nodes": [{"name": "a", "sql": "SELECT 1", "description": 5}]},
        "nodes[0].description must be a string",
    ),
    (
        {"description": ["x"], "nodes": [{"name": "a", "sql": "SELECT 1"}]},
        "body.description must be a string",
    ),
    (
        {"nodes": [{"name": "a", "sql": "SELECT 1"}, {"name": "a", "sql": "SELECT 2"}]},
        "nodes[1]: node 'a' appears twice (also nodes[0])",
    ),
    (
        {
            "nodes": [
                {"name": "a", "sql": "SELECT 1", "type": "endpoint"},
                {"name": "b", "sql": "SELECT 2", "type": "sink"},
            ]
        },
        "a pipe has one output: node 'b' has type sink, but node 'a' already has type endpoint",
    ),
    ({"nodes": [{"name": "a", "sql": "SELECT 1", "type": "materialized"}]}, "needs 'datasource'"),
    ({"nodes": [{"name": "a", "sql": "SELECT 1", "type": "copy"}]}, "needs 'target_datasource'"),
    (
        {
            "nodes": [
                {"name": "a", "sql": "SELECT 1", "type": "copy", "target_datasource": "t", "mode": "merge"}
            ]
        },
        "nodes[0].mode: COPY_MODE must be append or replace",
    ),
    (
        {"nodes": [{"name": "a", "sql": "SELECT 1", "engine_sorting_key": ["a"]}]},
        "engine_sorting_key must be a string",
    ),
]


@pytest.mark.parametrize(("body", "message"), API_ERRORS, ids=[e[1][:40] for e in API_ERRORS])
def test_pipe_from_api_errors(body, message):
    with pytest.raises(DatafileError) as info:
        pipe_from_api(body)
    assert message in str(info.value)
    assert info.value.line is None
