"""Hostile templates and template parameters.

Escapes: node SQL that tries to reach Python (dunders, builtins, attribute access, formatting,
comprehensions, lambdas) or to exhaust the renderer (loops, growth, nesting), sent as a new pipe,
a new or changed node, a .pipe file, /v0/sql and `q=`. Injection: values for each typed function of
the endpoint `ep` (see conftest.EP_SQL); refused when they do not fit the type, and otherwise
taken strictly as literals (the `INJECTION_INERT` family checks the rows that come back)."""

from __future__ import annotations

from cases_sql import node, over, sql
from hostile import Case, Inert


def escape(id: str, expr: str, error: str, **kw) -> Case:
    """A new endpoint node whose template evaluates `expr`."""
    return node(id, "%\nSELECT " + expr + " AS x FROM events", error, **kw)


UNKNOWN_FUNCTION = "unknown function"
DUNDER = "names starting with '__' are not allowed"

TEMPLATE_ESCAPES = [
    escape("dunder_import", "{{ __import__('os').system('touch %PWN_ABS%') }}", DUNDER),
    escape("dunder_builtins", "{{ __builtins__ }}", DUNDER),
    escape("dunder_class", "{{ ''.__class__ }}", "attribute access ('.__class__') is not allowed"),
    escape("dunder_mro", "{{ x.__class__.__mro__ }}", "attribute access"),
    escape("subclasses", "{{ ().__class__.__bases__[0].__subclasses__() }}", "attribute access"),
    escape("function_globals", "{{ columns.__globals__ }}", "attribute access"),
    escape("method_call", "{{ 'a'.upper() }}", "attribute access ('.upper')"),
    escape("getattr", "{{ getattr(1, '__class__') }}", "unknown function 'getattr'"),
    escape("eval", "{{ eval('1 + 1') }}", "unknown function 'eval'"),
    escape("exec", "{{ exec('import os') }}", "unknown function 'exec'"),
    escape("open", "{{ open('/etc/passwd') }}", "unknown function 'open'"),
    escape("globals", "{{ globals() }}", "unknown function 'globals'"),
    escape("type", "{{ type(1) }}", UNKNOWN_FUNCTION),
    escape("percent_format", "{{ '%s' % 1 }}", "'%' formatting of strings is not allowed"),
    escape("format_method", "{{ '{0.__class__}'.format(1) }}", "attribute access ('.format')"),
    escape("f_string", "{{ f'{1}' }}", "f-strings are not allowed"),
    escape("list_comprehension", "{{ [x for x in range(3)] }}", "comprehensions"),
    escape("generator", "{{ max(x for x in range(3)) }}", "comprehensions and generator expressions"),
    escape("dict_comprehension", "{{ len({x: 1 for x in range(3)}) }}", "dict keys must be literal"),
    escape("lambda", "{{ (lambda: 1)() }}", "lambda expressions are not allowed"),
    escape("lambda_as_key", "{{ max(range(3), key=lambda x: -x) }}", "lambda expressions are not allowed"),
    escape("power", "{{ 2 ** 100000 }}", "'**' operator is not allowed"),
    escape("matmul", "{{ 'a' @ 'b' }}", "'@' operator is not allowed"),
    escape("slice", "{{ 'abc'[0:2] }}", "slices are not allowed"),
    escape("import_block", "{% import os %}1", "{% import %} is not supported"),
    escape("from_import_block", "{% from os import system %}1", "{% from %} is not supported"),
    escape("include_block", "{% include '/etc/passwd' %}", "{% include %} is not supported"),
    escape("extends_block", "{% extends '/etc/passwd' %}", "{% extends %} is not supported"),
    escape("module_block", "{% module Template('x') %}", "{% module %} is not supported"),
    escape("raw_block", "{% raw __import__('os') %}", "{% raw %} is not supported"),
    escape("autoescape_block", "{% autoescape None %}1", "{% autoescape %} is not supported"),
    escape("apply_block", "{% apply str %}1{% end %}", "{% apply %} is not supported"),
    escape("try_block", "{% try %}1{% except %}2{% end %}", "{% try %} is not supported"),
    escape("while_loop", "{% while True %}1{% end %}", "{% while %} is not supported"),
    escape("secret_function", "{{ tb_secret('aws_key') }}", "tb_secret"),
    escape(
        "huge_loop",
        "{% for i in range(100000) %}{% for j in range(100000) %}1{% end %}{% end %}",
        "Too many loop iterations",
    ),
    escape("huge_string", "{{ 'a' * 100000000 }}", "Strings built by templates are limited"),
    escape(
        "huge_output",
        "{% set x = 'a' * 999999 %}{% for i in range(100) %}{{ x }}{% end %}",
        "rendered SQL is too large",
    ),
    escape("output_from_enumerate", "{{ enumerate(range(100000)) }}", "rendered SQL is too large"),
    escape(
        "list_doubling",
        "{% set a = [1] %}{% for i in range(64) %}{% set a = a + a %}{% end %}1",
        "Lists built by templates are limited",
    ),
    escape("big_integer", "{{ " + " * ".join(["99999999999999999999"] * 60) + " }}", "Integer too large"),
    escape("deep_parentheses", "{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "nested too deeply"),
    escape("deep_brackets", "{{ " + "[" * 300 + "]" * 300 + " }}", "nested too deeply"),
    escape("deep_unary", "{{ " + "-" * 5000 + "1 }}", "nested too deeply"),
    escape("deep_not", "{{ " + "not " * 5000 + "1 }}", "nested too deeply"),
    escape("long_chain", "{{ " + " + ".join(["1"] * 20000) + " }}", "too deep"),
    escape("deep_if_chain", "{{ " + "1 if 1 else " * 3000 + "1 }}", "nested too deeply"),
    escape("deep_subscripts", "{{ x" + "[0]" * 3000 + " }}", "too deep"),
    escape("deep_blocks", "{% if 1 %}" * 60 + "1" + "{% end %}" * 60, "blocks are nested too deeply"),
    escape("unknown_name", "{{ os }}", "Unknown name 'os'"),
    Case(
        "add_node",
        "POST",
        "/v0/pipes/other/nodes",
        400,
        DUNDER,
        data={"name": "hostile_node", "sql": "%\nSELECT {{ __import__('os') }}"},
    ),
    Case(
        "change_node",
        "PUT",
        "/v0/pipes/other/nodes/other_node",
        400,
        "attribute access",
        data={"sql": "%\nSELECT {{ ''.__class__.__mro__ }}"},
    ),
    Case(
        "pipe_datafile",
        "POST",
        "/v0/pipes",
        400,
        "comprehensions",
        params={"name": "hostile_pipe"},
        content="NODE n\nSQL >\n    %\n    SELECT {{ [c for c in range(9)] }}\n\nTYPE endpoint\n",
        headers={"Content-Type": "text/plain"},
    ),
    sql("sql_api", "%\nSELECT {{ __import__('os').getcwd() }}", DUNDER),
    sql("sql_api_loop", "%\nSELECT {% for i in range(1000000) %}1,{% end %} 1", "range() is limited"),
    sql(
        "sql_api_error",
        "%\nSELECT {{ error('stopped by the template', 403) }}",
        "stopped by the template",
        status=403,
    ),
    sql("sql_api_custom_error", "%\nSELECT {{ custom_error({'error': 'custom stop'}, 500) }}", "custom stop"),
    Case(
        "sql_api_error_in_pipeline_node",
        "GET",
        "/v0/sql",
        400,
        "stop",
        params={"q": "%\nSELECT * FROM ep_node {{ error('stop') }}", "pipeline": "ep"},
    ),
    over("q", "%\nSELECT {{ ''.join(['a']) }} FROM _", "attribute access"),
    over("q_error", "%\nSELECT * FROM _ {{ error('stopped in q', 409) }}", "stopped in q", status=409),
    Case(
        "materialized_node_error",
        "POST",
        "/v0/pipes",
        400,
        "view boom",
        json={
            "name": "hostile_view",
            "nodes": [
                {
                    "name": "hostile_view_node",
                    "type": "materialized",
                    "datasource": "hostile_target",
                    "engine": "MergeTree",
                    "engine_sorting_key": "id",
                    "sql": "%\nSELECT id FROM events {{ error('view boom') }}",
                }
            ],
        },
    ),
]


def param(id: str, values: dict, error: str, status: int = 400) -> Case:
    return Case(id, "GET", "/v0/pipes/ep.json", status, error, params=values)


PARAM_INJECTION = [
    param("int_or", {"i": "1 OR 1=1"}, "Parameter 'i' must be Int32"),
    param("int_statement", {"i": "1; DROP TABLE events"}, "Parameter 'i' must be Int32"),
    param("int_comment", {"i": "1 --"}, "Parameter 'i' must be Int32"),
    param("int_hex", {"i": "0x1F"}, "Parameter 'i' must be Int32"),
    param("int8_overflow", {"i8": "128"}, "out of range"),
    param("uint_negative", {"u64": "-1"}, "out of range"),
    param("int256_float", {"i256": "1e5"}, "Parameter 'i256' must be Int256"),
    param("int_in_json_body_list", {"i": ["1", "2) OR (1=1"]}, "Parameter 'i' must be Int32"),
    param("float_or", {"f": "1 OR 1"}, "Parameter 'f' must be Float64"),
    param("float_nan", {"f": "nan"}, "Parameter 'f' must be Float64"),
    param("float_infinite", {"f": "1e400"}, "out of range"),
    param("float32_overflow", {"f32": "1e39"}, "out of range"),
    param("boolean", {"b": "1 OR 1"}, "Parameter 'b' must be Boolean"),
    param("date", {"d": "2024-01-01'); DROP TABLE events; --"}, "Parameter 'd' must be Date"),
    param("date_invalid", {"d": "2024-13-45"}, "not a valid date"),
    param("datetime", {"dt": "2024-01-01 00:00:00' OR '1'='1"}, "Parameter 'dt' must be DateTime"),
    param("datetime64", {"dt64": "2024-01-01 00:00:00.000; DROP TABLE events"}, "must be DateTime64"),
    param(
        "uuid", {"uuid": "00000000-0000-0000-0000-000000000000' OR '1'='1"}, "Parameter 'uuid' must be UUID"
    ),
    param("json", {"j": "{\"k\": 'x'} OR 1=1"}, "not valid JSON"),
    param("int_array", {"ids": "1,2) OR (1=1"}, "must be Array(Int32)"),
    param("int_array_statement", {"ids": "1; DROP TABLE events"}, "must be Array(Int32)"),
    param("sql_and_int", {"lt": "3 OR 1=1"}, "Parameter 'lt' must be Int32"),
    param("limit_union", {"limit": "1 UNION ALL SELECT 1, 's', 1"}, "Parameter 'limit' must be Int32"),
    param("limit_huge", {"limit": "99999999999999"}, "out of range"),
    param("column_statement", {"col": "id; DROP TABLE events"}, "must be a column name"),
    param("column_subquery", {"col": "(SELECT s FROM secret)"}, "must be a column name"),
    param("column_backticks", {"col": "id`, (SELECT 1) AS `x"}, "must be a column name"),
    param("column_comment", {"col": "id -- "}, "must be a column name"),
    param("column_other_table", {"col": "%B_DB%.%B_SECRET%.s"}, "Unknown expression identifier"),
    param("column_unknown", {"col": "no_such_column"}, "Unknown expression identifier"),
    param("columns_closing_query", {"cols": "id,event) FROM secret --"}, "must be a column name"),
    param("columns_backtick", {"cols": "id,`event`"}, "must be a column name"),
    param("symbol_backtick", {"sym": "id` , (SELECT s FROM secret) , `x"}, "without backticks"),
    param("symbol_backslash", {"sym": "id\\"}, "without backticks, backslashes"),
    param("symbol_newline", {"sym": "id\n; DROP TABLE events"}, "control characters"),
    param("symbol_too_long", {"sym": "x" * 300}, "without backticks"),
    param("symbol_unknown", {"sym": "system.tables"}, "Unknown expression identifier"),
    Case(
        "huge_value",
        "POST",
        "/v0/pipes/ep.json",
        400,
        "limited to 1000000 characters",
        json={"s": "a" * 1_200_000},
    ),
    # values that would render enormous SQL
    Case(
        "huge_array",
        "POST",
        "/v0/pipes/ep.json",
        400,
        "Arrays are limited to 100000 items",
        json={"ids": list(range(150_000))},
    ),
    Case(
        "long_array",
        "POST",
        "/v0/pipes/ep.json",
        400,
        "The query is too long",
        json={"ids": ",".join(map(str, range(90_000)))},
    ),
    Case(
        "long_columns",
        "POST",
        "/v0/pipes/ep.json",
        400,
        "The query is too long",
        json={"cols": ",".join(["id"] * 50_000)},
    ),
]


# Values that fit their type: the query runs and the value is only ever data. `pick` = the ids returned.
def inert(id: str, values: dict, ids: list[int], token: str = "admin_a") -> Inert:
    return Inert(id, "GET", "/v0/pipes/ep.json", ids, token=token, params=values, pick="id")


CLICKS = [0, 3, 6, 9]
VIEWS = [1, 4, 7]

INJECTION_INERT = [
    inert("baseline_string", {"s": "click"}, CLICKS),
    inert("string_or", {"s": "x' OR 1=1 --"}, []),
    inert("string_escaped_quote", {"s": "x\\' OR 1=1 --"}, []),
    inert("string_double_quote", {"s": 'x" OR 1=1 --'}, []),
    inert("string_union", {"s": "' UNION ALL SELECT id, s, 0 FROM secret --"}, []),
    inert("string_drop", {"s": "click'; DROP TABLE events; --"}, []),
    inert("string_truncate_physical", {"s": "'; TRUNCATE TABLE %A_DB%.%A_EVENTS%; --"}, []),
    inert("string_nul", {"s": "click\x00' OR 1=1 --"}, []),
    inert("string_newline_comment", {"s": "click' --\nOR 1=1"}, []),
    inert("string_backslash_end", {"s": "click\\"}, []),
    inert("string_template_syntax", {"s": "{{ __import__('os') }}"}, []),
    inert("string_modifier_quote", {"s": "click\u02bc OR 1=1"}, []),
    inert("baseline_array", {"arr": ["view", "buy'"]}, VIEWS),
    inert("array_or", {"arr": "x','y') OR ('1'='1"}, []),
    inert("array_items_with_quotes", {"arr": ["click' OR '1'='1", "view"]}, VIEWS),
    inert("bare_param", {"raw": "x' OR 1=1 --"}, []),
    inert("bare_param_backslash", {"raw": "\\' OR 1=1 --"}, []),
    inert("split_to_array", {"sp": "click' OR 1=1,view"}, VIEWS),
    inert("baseline_like", {"like": "cl%"}, CLICKS),
    inert("sql_unescape", {"like": "%' OR '1'='1"}, []),
    inert("baseline_json", {"j": '{"k": "view"}'}, VIEWS),
    inert("json_string", {"j": '{"k": "view\' OR 1=1 --"}'}, []),
    inert("enum_with_default", {"en": "view' OR 1=1"}, CLICKS),
    inert("sql_and_array", {"ev": "click' OR 1=1"}, []),
    inert("undeclared_dunder_param", {"__class__": "x", "__import__": "os", "i": "4"}, [4]),
    inert("ddl_in_string", {"s": "'; ALTER TABLE events DELETE WHERE 1; --"}, []),
]
