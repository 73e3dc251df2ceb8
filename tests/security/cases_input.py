"""Hostile request shapes: oversized bodies, headers and values; names with path traversal, control
characters, look-alikes and reserved words on create and rename; paths in URLs and datafiles; and
definitions (schemas, engines, conditions, JSONPaths) that try to carry SQL or files into the DDL."""

from __future__ import annotations

import gzip

from cases_sql import node, sql_body
from hostile import Case

_EVENT_LINE = b'{"id": 1, "event": "x", "value": 1}\n'

OVERSIZED = [
    sql_body("query_body", "SELECT '" + "a" * 300_000 + "'", "The query is too long"),
    Case(
        "query_form_field",
        "POST",
        "/v0/sql",
        400,
        "Field exceeded maximum size",
        data={"q": "SELECT '" + "a" * 1_100_000 + "'"},
    ),
    Case(
        "query_multipart_part",
        "POST",
        "/v0/sql",
        400,
        "Part exceeded maximum size",
        files={"q": (None, "SELECT '" + "a" * 1_100_000 + "'")},
    ),
    Case(
        "too_many_form_fields",
        "POST",
        "/v0/sql",
        400,
        "Too many fields",
        content="&".join(f"k{i}=v" for i in range(5000)) + "&q=SELECT+1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "events_body",
        "POST",
        "/v0/events",
        413,
        "events_max_body_bytes",
        params={"name": "events"},
        content=_EVENT_LINE * 300_000,
    ),
    Case(
        "events_declared_length",
        "POST",
        "/v0/events",
        413,
        "events_max_body_bytes",
        params={"name": "events"},
        content=_EVENT_LINE,
        headers={"Content-Length": "99999999999"},
    ),
    Case(
        "events_gzip_bomb",
        "POST",
        "/v0/events",
        413,
        "decompressed body is over",
        params={"name": "events"},
        content=gzip.compress(b"\n" * 120_000_000, 1),
        headers={"Content-Encoding": "gzip"},
    ),
    Case(
        "events_bad_gzip",
        "POST",
        "/v0/events",
        400,
        "gzip",
        params={"name": "events"},
        content=b"\x1f\x8b\x08\x00garbage",
        headers={"Content-Encoding": "gzip"},
    ),
    Case(
        "authorization_header",
        "GET",
        "/v0/sql",
        403,
        "Invalid token",
        token="anonymous",
        params={"q": "SELECT 1"},
        headers={"Authorization": "Bearer " + "a" * 2_000_000},
    ),
    Case(
        "token_param",
        "GET",
        "/v0/sql",
        403,
        "Invalid token",
        token="anonymous",
        params={"q": "SELECT 1", "token": "p." + "a" * 60_000},
    ),
    Case(
        "endpoint_value",
        "POST",
        "/v0/pipes/ep.json",
        400,
        "limited to 1000000 characters",
        json={"s": "a" * 1_100_000},
    ),
    node("node_sql", "SELECT '" + "a" * 300_000 + "'", "The query is too long"),
    node("node_template", "%\nSELECT '" + "a" * 300_000 + "'", "too long"),
    Case(
        "pipe_json_depth",
        "POST",
        "/v0/pipes",
        400,
        "not valid JSON",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"Content-Type": "application/json"},
    ),
    Case(
        "endpoint_json_depth",
        "POST",
        "/v0/pipes/ep.json",
        400,
        "not valid JSON",
        content=b'{"s":' * 50_000 + b"1" + b"}" * 50_000,
        headers={"Content-Type": "application/json"},
    ),
    Case(
        "schema_form_field",
        "POST",
        "/v0/datasources",
        400,
        "Field exceeded maximum size",
        data={"name": "hostile_ds", "schema": ", ".join(f"c{i} UInt8" for i in range(120_000))},
    ),
    Case(
        "delete_condition",
        "POST",
        "/v0/datasources/events/delete",
        400,
        "too long",
        data={"delete_condition": "id = " + "1 + " * 10_000 + "1"},
    ),
]

INVALID = "use letters, digits and underscores, not starting with a digit"
RESERVED = "it is a reserved word"
TOO_LONG = "longer than 128 characters"

_BAD_NAMES = [
    ("traversal", "../x", INVALID),
    ("slash", "a/b", INVALID),
    ("nul", "a\x00b", INVALID),
    ("newline", "a\nb", INVALID),
    ("cyrillic_lookalike", "\u0435vents", INVALID),
    ("zero_width", "ev\u200bents", INVALID),
    ("accented", "\u00e9v\u00e9nement", INVALID),
    ("system", "system", RESERVED),
    ("tinybird", "tinybird", RESERVED),
    ("information_schema", "INFORMATION_SCHEMA", RESERVED),
    ("over_length", "x" * 200, TOO_LONG),
    ("leading_digit", "1abc", INVALID),
    ("quote", "a'b", INVALID),
    ("backtick", "a`b", INVALID),
    ("dotted", "w_x.t_y", INVALID),
]


def _name_cases() -> list[Case]:
    out = []
    for key, name, error in _BAD_NAMES:
        out += [
            Case(
                f"create_datasource_{key}",
                "POST",
                "/v0/datasources",
                400,
                error,
                data={"name": name, "schema": "a UInt8"},
            ),
            Case(
                f"create_pipe_{key}",
                "POST",
                "/v0/pipes",
                400,
                error,
                json={"name": name, "nodes": [{"name": "n", "sql": "SELECT 1"}]},
            ),
            Case(
                f"rename_datasource_{key}",
                "PUT",
                "/v0/datasources/a_private",
                400,
                error,
                data={"name": name},
            ),
            Case(f"rename_pipe_{key}", "PUT", "/v0/pipes/other", 400, error, data={"name": name}),
            Case(
                f"rename_node_{key}",
                "PUT",
                "/v0/pipes/other/nodes/other_node",
                400,
                error,
                data={"name": name},
            ),
        ]
    node_error = "is not a valid node name"
    for key, name, _error in _BAD_NAMES[:7]:
        body = {"name": "hostile_pipe", "nodes": [{"name": name, "sql": "SELECT 1"}]}
        out.append(Case(f"create_node_{key}", "POST", "/v0/pipes", 400, node_error, json=body))
        out.append(
            Case(
                f"events_{key}",
                "POST",
                "/v0/events",
                400,
                INVALID,
                params={"name": name},
                content=_EVENT_LINE,
            )
        )
        out.append(
            Case(
                f"append_{key}",
                "POST",
                "/v0/datasources",
                400,
                INVALID,
                params={"name": name, "mode": "append"},
                content=b"1,x,1\n",
            )
        )
    out.append(
        Case(
            "node_named_like_datasource",
            "POST",
            "/v0/pipes/other/nodes",
            400,
            "'events'",
            data={"name": "events", "sql": "SELECT 1"},
        )
    )
    out.append(
        Case(
            "pipe_named_like_datasource",
            "POST",
            "/v0/pipes",
            409,
            "already named 'events'",
            json={"name": "events", "nodes": [{"name": "n", "sql": "SELECT 1"}]},
        )
    )
    shared = "pipes and data sources share names"
    out.append(
        Case(
            "datasource_named_like_pipe",
            "POST",
            "/v0/datasources",
            409,
            shared,
            data={"name": "ep", "schema": "a UInt8"},
        )
    )
    out.append(
        Case(
            "datasource_renamed_like_pipe",
            "PUT",
            "/v0/datasources/a_private",
            409,
            shared,
            data={"name": "ep"},
        )
    )
    out.append(
        Case(
            "events_create_named_like_pipe",
            "POST",
            "/v0/events",
            409,
            shared,
            params={"name": "other"},
            content=_EVENT_LINE,
        )
    )
    return out


NAMES = _name_cases()

NO_ROUTE = "no such API route"

PATHS = [
    Case("encoded_traversal", "GET", "/v0/datasources/..%2F..%2Fetc%2Fpasswd", 404, NO_ROUTE),
    Case("encoded_traversal_delete", "DELETE", "/v0/datasources/..%2F..%2Fcatalog.db", 404, NO_ROUTE),
    Case(
        "encoded_traversal_truncate", "POST", "/v0/datasources/..%2F..%2Fcatalog.db/truncate", 404, NO_ROUTE
    ),
    Case("encoded_dots", "GET", "/v0/datasources/%2e%2e", 404, "Data Source '..' not found"),
    Case(
        "encoded_dots_rename",
        "PUT",
        "/v0/datasources/%2e%2e",
        404,
        "Data Source '..' not found",
        data={"name": "x"},
    ),
    Case("encoded_absolute", "GET", "/v0/datasources/%2Fetc%2Fpasswd.datasource", 404, NO_ROUTE),
    Case("nul_in_name", "GET", "/v0/datasources/events%00", 404, "Data Source 'events\x00' not found"),
    Case("newline_in_pipe", "GET", "/v0/pipes/ep%0A.json", 404, "does not exist"),
    Case("endpoint_traversal", "GET", "/v0/pipes/..%2F..%2Fetc%2Fpasswd.json", 404, NO_ROUTE),
    Case("endpoint_extension_traversal", "GET", "/v0/pipes/ep.json%2F..%2F..%2Fserver.key", 404, NO_ROUTE),
    Case("node_traversal", "DELETE", "/v0/pipes/other/nodes/..%2F..%2Fother", 404, NO_ROUTE),
    Case("job_traversal", "GET", "/v0/jobs/..%2F..%2Fcatalog.db", 404, NO_ROUTE),
    Case("unknown_format_extension", "GET", "/v0/pipes/ep.key", 404, "Unknown endpoint format"),
    Case(
        "pipe_datafile_include",
        "POST",
        "/v0/pipes",
        400,
        "INCLUDE",
        params={"name": "hostile_pipe"},
        content='INCLUDE "/etc/passwd"\n\nNODE n\nSQL >\n    SELECT 1\n',
        headers={"Content-Type": "text/plain"},
    ),
    Case(
        "append_format_traversal",
        "POST",
        "/v0/datasources",
        400,
        "Unsupported format",
        params={"name": "events", "mode": "append", "format": "../../x"},
        content=b"99,x,1\n",
    ),
    Case(
        "url_file_scheme",
        "POST",
        "/v0/datasources",
        400,
        "must be an http:// or https:// URL",
        data={"name": "events", "mode": "append", "url": "file:///etc/passwd"},
    ),
    Case(
        "url_loopback",
        "POST",
        "/v0/datasources",
        400,
        "loopback, private or reserved",
        data={"name": "events", "mode": "append", "url": "http://127.0.0.1:1/x.csv"},
    ),
    Case(
        "url_metadata",
        "POST",
        "/v0/datasources",
        400,
        "loopback, private or reserved",
        data={"name": "events", "mode": "append", "url": "http://169.254.169.254/latest/meta-data"},
    ),
    Case(
        "url_decimal_ip",
        "POST",
        "/v0/datasources",
        400,
        "loopback, private or reserved",
        data={"name": "events", "mode": "append", "url": "http://2130706433/x.csv"},
    ),
    Case(
        "url_ipv6_loopback",
        "POST",
        "/v0/datasources",
        400,
        "loopback, private or reserved",
        data={"name": "events", "mode": "append", "url": "http://[::1]/x.csv"},
    ),
]


def ds(id: str, form: dict, error: str, status: int = 400) -> Case:
    return Case(id, "POST", "/v0/datasources", status, error, data={"name": "hostile_ds", **form})


def delete(id: str, condition: str, error: str) -> Case:
    return Case(id, "POST", "/v0/datasources/events/delete", 400, error, data={"delete_condition": condition})


DEFINITIONS = [
    ds(
        "schema_closing_paren",
        {"schema": "a UInt8) ENGINE = File(CSV); DROP TABLE events; --"},
        "Invalid schema",
    ),
    ds("schema_trailing_statement", {"schema": "a String; DROP TABLE events"}, "Invalid schema"),
    ds("column_backtick", {"schema": "`a``b` String"}, "Invalid column name"),
    ds("default_file", {"schema": "a String DEFAULT file('/etc/passwd')"}, "Function 'file' is not allowed"),
    ds(
        "default_subquery",
        {"schema": "a String DEFAULT (SELECT any(s) FROM %B_DB%.%B_SECRET%)"},
        "Subqueries and table references are not allowed",
    ),
    ds(
        "materialized_dictget",
        {"schema": "a UInt64, b String MATERIALIZED dictGet('%B_DB%.secret_dict', 's', a)"},
        "'dictGet' is not allowed",
    ),
    ds("engine_file", {"schema": "a UInt8", "engine": "File(CSV)"}, "Unknown engine"),
    ds("engine_join", {"schema": "a UInt8", "engine": "Join(ANY, LEFT, a)"}, "Unknown engine"),
    ds(
        "sorting_key_paren",
        {"schema": "a UInt8", "engine_sorting_key": "a) SETTINGS storage_policy = 'x'"},
        "unbalanced",
    ),
    ds(
        "partition_key_subquery",
        {"schema": "a UInt8", "engine_partition_key": "(SELECT 1 FROM %B_DB%.%B_SECRET%)"},
        "Subqueries and table references",
    ),
    ds(
        "ttl_to_disk",
        {"schema": "a DateTime", "engine_ttl": "a + INTERVAL 1 DAY TO DISK 'x'"},
        "must not contain the keyword TO",
    ),
    ds(
        "ttl_file",
        {"schema": "a DateTime", "engine_ttl": "toDateTime(file('/etc/hostname'))"},
        "Function 'file' is not allowed",
    ),
    ds(
        "engine_settings_disk",
        {"schema": "a UInt8", "engine_settings": "disk = disk(type = local, path = '/tmp/')"},
        "setting 'disk' is not allowed",
    ),
    ds(
        "engine_settings_statement",
        {"schema": "a UInt8", "engine_settings": "index_granularity = 8192; DROP TABLE x"},
        "index_granularity",
    ),
    ds("jsonpath_unparseable", {"schema": "a String `json:$['x\\'); DROP TABLE events; --']`"}, "JSONPath"),
    ds("jsonpath_all_in_middle", {"schema": "a Array(String) `json:$.a[:].b[:]`"}, "JSONPath"),
    ds("jsonpath_no_dollar", {"schema": "a String `json:a.b`"}, "a jsonpath starts with '$'"),
    delete(
        "delete_subquery",
        "id IN (SELECT id FROM %B_DB%.%B_SECRET%)",
        "Subqueries and table references are not allowed",
    ),
    delete("delete_in_table", "id IN %B_DB%.%B_SECRET%", "IN <table> is not allowed"),
    delete("delete_file", "file('/etc/passwd') != ''", "Function 'file' is not allowed"),
    delete("delete_statement", "1; DROP TABLE events", "Syntax error"),
    delete("delete_settings", "1 SETTINGS mutations_sync = 2", "Syntax error"),
    Case(
        "replace_condition_statement",
        "POST",
        "/v0/datasources",
        400,
        "Invalid replace_condition",
        params={"name": "events", "mode": "replace", "replace_condition": "1; DROP TABLE events"},
        content=b"99,x,1\n",
    ),
    Case(
        "replace_condition_subquery",
        "POST",
        "/v0/datasources",
        400,
        "Invalid replace_condition",
        params={
            "name": "events",
            "mode": "replace",
            "replace_condition": "id IN (SELECT id FROM %B_DB%.%B_SECRET%)",
        },
        content=b"99,x,1\n",
    ),
    Case(
        "copy_target_other_workspace",
        "POST",
        "/v0/pipes",
        400,
        "target datasource '%B_DB%.%B_SECRET%' not found",
        json={
            "name": "hostile_copy",
            "nodes": [
                {
                    "name": "hostile_copy_node",
                    "type": "copy",
                    "target_datasource": "%B_DB%.%B_SECRET%",
                    "sql": "SELECT 1 AS id, 'x' AS s",
                }
            ],
        },
    ),
    Case(
        "view_target_system",
        "POST",
        "/v0/pipes",
        400,
        "Invalid Data Source name 'system': it is a reserved word",
        json={
            "name": "hostile_view",
            "nodes": [
                {
                    "name": "hostile_view_node",
                    "type": "materialized",
                    "datasource": "system",
                    "engine": "MergeTree",
                    "engine_sorting_key": "id",
                    "sql": "SELECT id FROM events",
                }
            ],
        },
    ),
    *[
        Case(f"populate_{key}", "POST", "/v0/pipes/mv/nodes/mv_node/population", 400, error, data=form)
        for key, form, error in [
            ("statement", {"populate_condition": "1; DROP TABLE events"}, "Invalid populate_condition"),
            ("subquery", {"populate_condition": "id IN (SELECT id FROM %B_DB%.%B_SECRET%)"}, "Subqueries"),
            ("in_table", {"populate_condition": "id IN %B_DB%.%B_SECRET%"}, "IN <table> is not allowed"),
            ("file", {"populate_condition": "file('/etc/passwd') != ''"}, "Function 'file' is not allowed"),
            ("sleep", {"populate_condition": "sleepEachRow(3) = 0"}, "'sleepEachRow' is not allowed"),
            ("settings", {"populate_condition": "1 SETTINGS max_threads = 1"}, "Invalid populate_condition"),
            ("subset", {"populate_subset": "1e400"}, "populate_subset must be a fraction"),
        ]
    ],
    Case(
        "materialize_into_other_workspace",
        "POST",
        "/v0/pipes/other/nodes/other_node/materialization",
        400,
        "does not exist",
        data={"datasource": "%B_DB%.%B_SECRET%"},
    ),
    Case(
        "copy_schedule_shell",
        "POST",
        "/v0/pipes/cp/nodes/cp_node/copy",
        400,
        "is not a cron expression",
        data={"schedule_cron": "* * * * *; rm -rf /"},
    ),
]
