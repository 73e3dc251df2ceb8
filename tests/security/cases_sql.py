"""Hostile SQL: other tenants' data, the engine's own tables, I/O table functions, statements other
than one SELECT, and queries meant to exhaust the server. Each through /v0/sql and, where it makes a
difference, through an endpoint's `q=` and through the SQL of a new pipe node."""

from __future__ import annotations

from hostile import Case, Inert

READ_ONLY = "Only read-only SELECT queries are allowed"
ONE_STATEMENT = "Only one statement is allowed"
SYSTEM_TABLES = "system tables are not available"


def sql(id: str, q: str, error: str, status: int | tuple[int, ...] = 400, **kw) -> Case:
    return Case(id, "GET", "/v0/sql", status, error, params={"q": q}, **kw)


def sql_body(id: str, q: str, error: str, status: int | tuple[int, ...] = 400, **kw) -> Case:
    return Case(id, "POST", "/v0/sql", status, error, content=q, headers={"Content-Type": "text/plain"}, **kw)


def over(id: str, q: str, error: str, status: int | tuple[int, ...] = 400, **kw) -> Case:
    """`q=` over the endpoint `ep` (its result is the table `_`)."""
    return Case(id, "GET", "/v0/pipes/ep.json", status, error, params={"q": q}, **kw)


def node(id: str, q: str, error: str, status: int | tuple[int, ...] = 400, **kw) -> Case:
    body = {"name": "hostile_pipe", "nodes": [{"name": "hostile_node", "type": "endpoint", "sql": q}]}
    return Case(id, "POST", "/v0/pipes", status, error, json=body, **kw)


B = "%B_DB%.%B_SECRET%"
B_NOT_FOUND = f"Resource '{B}' not found"

CROSS_WORKSPACE = [
    sql("name", "SELECT * FROM secret", "Resource 'secret' not found"),
    sql("name_quarantine", "SELECT * FROM secret_quarantine", "Resource 'secret_quarantine' not found"),
    sql("pipe_name", "SELECT * FROM b_ep", "Resource 'b_ep' not found"),
    Case(
        "pipeline_param",
        "GET",
        "/v0/sql",
        404,
        "Pipe 'b_ep' not found",
        params={"q": "SELECT 1", "pipeline": "b_ep"},
    ),
    sql("bare_physical_table", "SELECT * FROM %B_SECRET%", "Resource '%B_SECRET%' not found"),
    sql("qualified", f"SELECT * FROM {B}", f"Resource '{B}' not found"),
    sql("qualified_backticks", "SELECT * FROM `%B_DB%`.`%B_SECRET%`", B_NOT_FOUND),
    sql("qualified_double_quotes", 'SELECT * FROM "%B_DB%"."%B_SECRET%"', B_NOT_FOUND),
    sql("qualified_by_name", "SELECT * FROM %B_DB%.secret", "Resource '%B_DB%.secret' not found"),
    sql("qualified_quarantine", f"SELECT * FROM {B}_quarantine", f"Resource '{B}_quarantine' not found"),
    sql(
        "qualified_dictionary", "SELECT * FROM %B_DB%.secret_dict", "Resource '%B_DB%.secret_dict' not found"
    ),
    sql(
        "qualified_join_table", "SELECT * FROM %B_DB%.secret_join", "Resource '%B_DB%.secret_join' not found"
    ),
    sql("join", f"SELECT * FROM events AS e JOIN {B} AS s ON s.id = e.id", B_NOT_FOUND),
    sql("comma_join", f"SELECT * FROM events AS e, {B} AS s", B_NOT_FOUND),
    sql("union", f"SELECT toString(id) FROM events UNION ALL SELECT s FROM {B}", B_NOT_FOUND),
    sql("in_table", f"SELECT count() FROM events WHERE id IN {B}", B_NOT_FOUND),
    sql("in_parenthesised_table", f"SELECT 'x' IN (({B}))", B_NOT_FOUND),
    sql("not_in_table", f"SELECT 'x' NOT IN {B}", B_NOT_FOUND),
    sql("global_in_table", f"SELECT 'x' GLOBAL IN {B}", B_NOT_FOUND),
    sql("in_function_form", f"SELECT `in`('x', {B})", "function 'in' is not allowed"),
    sql("in_subquery", f"SELECT count() FROM events WHERE id IN (SELECT id FROM {B})", B_NOT_FOUND),
    sql("in_inside_lambda", f"SELECT arrayFilter(x -> x IN {B}, [1])", B_NOT_FOUND),
    sql("scalar_subquery", f"SELECT (SELECT any(s) FROM {B})", B_NOT_FOUND),
    sql("exists_subquery", f"SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM {B})", B_NOT_FOUND),
    sql("cte", f"WITH t AS (SELECT * FROM {B}) SELECT * FROM t", B_NOT_FOUND),
    sql(
        "cte_shadowing_events",
        "WITH events AS (SELECT * FROM %B_DB%.%B_EVENTS%) SELECT * FROM events",
        "Resource '%B_DB%.%B_EVENTS%' not found",
    ),
    sql("column_with_table_path", f"SELECT {B}.s FROM events", "Unknown expression identifier"),
    sql(
        "joinget",
        "SELECT joinGet('%B_DB%.secret_join', 's', toUInt64(1))",
        "Function 'joinGet' is not allowed",
    ),
    sql(
        "joinget_or_null",
        "SELECT joinGetOrNull('%B_DB%.secret_join', 's', toUInt64(1))",
        "'joinGetOrNull' is not allowed",
    ),
    sql("merge_database", "SELECT * FROM merge('%B_DB%', '.*')", "Table function 'merge' is not allowed"),
    sql("merge_regexp", "SELECT * FROM merge(REGEXP('^w_'), '.*')", "Table function 'merge' is not allowed"),
    sql(
        "dictget",
        "SELECT dictGet('%B_DB%.secret_dict', 's', toUInt64(1))",
        "Function 'dictGet' is not allowed",
    ),
    sql(
        "dictget_string",
        "SELECT dictGetString('%B_DB%.secret_dict', 's', toUInt64(1))",
        "'dictGetString' is not allowed",
    ),
    sql("dicthas", "SELECT dictHas('%B_DB%.secret_dict', toUInt64(1))", "'dictHas' is not allowed"),
    sql(
        "dictionary_table_function",
        "SELECT * FROM dictionary('%B_DB%.secret_dict')",
        "'dictionary' is not allowed",
    ),
    sql(
        "has_column_in_table",
        "SELECT hasColumnInTable('%B_DB%', '%B_SECRET%', 's')",
        "'hasColumnInTable' is not allowed",
    ),
    sql("workspace_name", "SELECT * FROM %B_NAME%.secret", "Resource '%B_NAME%.secret' not found"),
    sql("workspace_name_events", "SELECT * FROM %B_NAME%.events", "Resource '%B_NAME%.events' not found"),
    sql(
        "workspace_name_in",
        "SELECT count() FROM events WHERE id IN (SELECT id FROM %B_NAME%.secret)",
        "Resource '%B_NAME%.secret' not found",
    ),
    sql(
        "service_database",
        "SELECT * FROM tody_service.pipe_stats_rt",
        "Resource 'tody_service.pipe_stats_rt' not found",
    ),
    sql(
        "service_qualifier_other_name",
        "SELECT * FROM tinybird.%B_SECRET%",
        "Resource 'tinybird.%B_SECRET%' not found",
    ),
    sql("default_database", "SELECT * FROM default.%B_SECRET%", "Resource 'default.%B_SECRET%' not found"),
    over("q_qualified", f"SELECT * FROM {B}", B_NOT_FOUND),
    over("q_in_subquery", f"SELECT * FROM _ WHERE id IN (SELECT id FROM {B})", B_NOT_FOUND),
    over("q_name", "SELECT * FROM _ JOIN secret USING id", "Resource 'secret' not found"),
    node("node_qualified", f"SELECT * FROM {B}", B_NOT_FOUND),
    node("node_name", "SELECT * FROM secret", "Resource 'secret' not found"),
    node("node_workspace_name", "SELECT * FROM %B_NAME%.secret", "Resource '%B_NAME%.secret' not found"),
    node(
        "node_joinget", "SELECT joinGet('%B_DB%.secret_join', 's', toUInt64(1))", "'joinGet' is not allowed"
    ),
    Case("b_token_on_a_endpoint", "GET", "/v0/pipes/ep.json", 404, "'ep' does not exist", token="admin_b"),
    Case(
        "b_token_on_a_datasource",
        "GET",
        "/v0/datasources/a_private",
        404,
        "Data Source 'a_private' not found",
        token="admin_b",
    ),
    Case("b_token_drops_a_pipe", "DELETE", "/v0/pipes/ep", 404, "Pipe 'ep' not found", token="admin_b"),
    Case("b_token_reads_a_job", "GET", "/v0/jobs/%A_JOB%", 404, "Job '%A_JOB%' not found", token="admin_b"),
    Case(
        "b_token_cancels_a_job",
        "POST",
        "/v0/jobs/%A_JOB%/cancel",
        404,
        "Job '%A_JOB%' not found",
        token="admin_b",
    ),
    Case(
        "a_token_on_b_datasource_id",
        "GET",
        "/v0/datasources/%B_SECRET%",
        404,
        "Data Source '%B_SECRET%' not found",
    ),
    Case(
        "a_token_truncates_b_datasource_id",
        "POST",
        "/v0/datasources/%B_SECRET%/truncate",
        404,
        "Data Source '%B_SECRET%' not found",
    ),
    Case("a_token_on_b_endpoint", "GET", "/v0/pipes/b_ep.json", 404, "'b_ep' does not exist"),
    Case("a_token_on_b_datasource", "GET", "/v0/datasources/secret", 404, "Data Source 'secret' not found"),
]

# Service data sources are shared tables read per workspace: A never sees B's rows.
CROSS_WORKSPACE_INERT = [
    Inert(
        "service_rows_of_b",
        "GET",
        "/v0/sql",
        [{"c": 0}],
        params={
            "q": "SELECT count() AS c FROM tinybird.datasources_ops_log WHERE datasource_name = 'secret'"
        },
    ),
]

SYSTEM = [
    sql("tables", "SELECT * FROM system.tables", SYSTEM_TABLES),
    sql("databases", "SELECT name FROM system.databases", SYSTEM_TABLES),
    sql("one_backticks", "SELECT * FROM `system`.`one`", SYSTEM_TABLES),
    sql("upper_case", "SELECT * FROM SYSTEM.ONE", SYSTEM_TABLES),
    sql("double_quotes", 'SELECT * FROM "system"."one"', SYSTEM_TABLES),
    sql("numbers", "SELECT * FROM system.numbers LIMIT 1", SYSTEM_TABLES),
    sql("processes", "SELECT query FROM system.processes", SYSTEM_TABLES),
    sql("settings", "SELECT * FROM system.settings", SYSTEM_TABLES),
    sql("parts_join", "SELECT * FROM events JOIN system.parts AS p ON p.name = events.event", SYSTEM_TABLES),
    sql("in_system_table", "SELECT 1 FROM events WHERE event IN system.one", SYSTEM_TABLES),
    sql("cte_system", "WITH t AS (SELECT * FROM system.tables) SELECT * FROM t", SYSTEM_TABLES),
    sql("information_schema", "SELECT * FROM information_schema.tables", SYSTEM_TABLES),
    sql("information_schema_upper", "SELECT * FROM INFORMATION_SCHEMA.COLUMNS", SYSTEM_TABLES),
    sql("get_server_setting", "SELECT getServerSetting('path')", "'getServerSetting' is not allowed"),
    sql("get_setting", "SELECT getSetting('readonly')", "'getSetting' is not allowed"),
    sql("current_database", "SELECT currentDatabase()", "'currentDatabase' is not allowed"),
    sql("host_name", "SELECT hostName()", "'hostName' is not allowed"),
    sql("filesystem", "SELECT filesystemAvailable()", "'filesystemAvailable' is not allowed"),
    sql("introspection", "SELECT addressToSymbol(toUInt64(1))", "'addressToSymbol' is not allowed"),
    over("q_system", "SELECT * FROM system.tables", SYSTEM_TABLES),
    node("node_system", "SELECT * FROM system.databases", SYSTEM_TABLES),
]

TABLE_FUNCTIONS = [
    sql("file", "SELECT * FROM file('/etc/passwd', 'LineAsString')", "Table function 'file' is not allowed"),
    sql("file_scalar", "SELECT file('/etc/passwd')", "Function 'file' is not allowed"),
    sql(
        "file_scalar_in_lambda",
        "SELECT arrayMap(x -> file(x), ['/etc/passwd'])",
        "Function 'file' is not allowed",
    ),
    sql(
        "file_scalar_in_where",
        "SELECT 1 FROM events WHERE file('/etc/hostname') != ''",
        "Function 'file' is not allowed",
    ),
    sql("file_cluster", "SELECT * FROM fileCluster('c', '/etc/passwd')", "'fileCluster' is not allowed"),
    sql("path_as_table", "SELECT * FROM '/etc/passwd'", "Resource '/etc/passwd' not found"),
    sql("path_as_quoted_table", "SELECT * FROM `/etc/passwd`", "Resource '/etc/passwd' not found"),
    sql(
        "url",
        "SELECT * FROM url('http://169.254.169.254/latest/meta-data', 'LineAsString')",
        "'url' is not allowed",
    ),
    sql("url_cluster", "SELECT * FROM urlCluster('c', 'http://127.0.0.1/')", "'urlCluster' is not allowed"),
    sql("s3", "SELECT * FROM s3('http://127.0.0.1/b/x.csv')", "'s3' is not allowed"),
    sql(
        "s3_cluster", "SELECT * FROM s3Cluster('c', 'http://127.0.0.1/b/x.csv')", "'s3Cluster' is not allowed"
    ),
    sql("gcs", "SELECT * FROM gcs('http://127.0.0.1/b/x.csv')", "'gcs' is not allowed"),
    sql("azure", "SELECT * FROM azureBlobStorage('x')", "'azureBlobStorage' is not allowed"),
    sql("hdfs", "SELECT * FROM hdfs('hdfs://127.0.0.1/x', 'CSV', 'a String')", "'hdfs' is not allowed"),
    sql("mysql", "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')", "'mysql' is not allowed"),
    sql(
        "postgresql",
        "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')",
        "'postgresql' is not allowed",
    ),
    sql(
        "mongodb",
        "SELECT * FROM mongodb('127.0.0.1:27017', 'db', 'c', 'u', 'p', 'x String')",
        "'mongodb' is not allowed",
    ),
    sql("redis", "SELECT * FROM redis('127.0.0.1:6379', 'k', 'k String')", "'redis' is not allowed"),
    sql("remote", "SELECT * FROM remote('127.0.0.1', '%B_DB%', '%B_SECRET%')", "'remote' is not allowed"),
    sql(
        "remote_secure",
        "SELECT * FROM remoteSecure('127.0.0.1', system.one)",
        "'remoteSecure' is not allowed",
    ),
    sql("cluster", "SELECT * FROM cluster('default', '%B_DB%', '%B_SECRET%')", "'cluster' is not allowed"),
    sql(
        "cluster_all_replicas",
        "SELECT * FROM clusterAllReplicas('default', system.one)",
        "'clusterAllReplicas' is not allowed",
    ),
    sql("jdbc", "SELECT * FROM jdbc('jdbc:x', 't')", "'jdbc' is not allowed"),
    sql("odbc", "SELECT * FROM odbc('DSN=x', 't')", "'odbc' is not allowed"),
    sql("iceberg", "SELECT * FROM iceberg('http://127.0.0.1/t')", "'iceberg' is not allowed"),
    sql("delta_lake", "SELECT * FROM deltaLake('http://127.0.0.1/t')", "'deltaLake' is not allowed"),
    sql("python_upper", "SELECT * FROM Python(platform)", "'Python' is not allowed"),
    sql("python_lower", "SELECT * FROM python('platform')", "'python' is not allowed"),
    sql(
        "executable",
        "SELECT * FROM executable('cat /etc/passwd', 'LineAsString', 'x String')",
        "'executable' is not allowed",
    ),
    sql("sqlite", "SELECT * FROM sqlite('%ENGINE_DIR%/x.db', 't')", "'sqlite' is not allowed"),
    sql("input", "SELECT * FROM input('a String')", "'input' is not allowed"),
    sql("format", "SELECT * FROM format(CSV, 'a\n1')", "'format' is not allowed"),
    sql("view", f"SELECT * FROM view(SELECT * FROM {B})", "not allowed"),
    sql("loop", "SELECT * FROM loop(events) LIMIT 1", "'loop' is not allowed"),
    sql(
        "merge_tree_index",
        "SELECT * FROM mergeTreeIndex('%B_DB%', '%B_SECRET%')",
        "'mergeTreeIndex' is not allowed",
    ),
    sql("describe_file", "DESCRIBE file('/etc/passwd')", "statements are not allowed"),
    sql("insert_into_function_file", "INSERT INTO FUNCTION file('%PWN_ABS%', 'CSV') SELECT 1", READ_ONLY),
    over("q_file", "SELECT * FROM _ WHERE event = file('/etc/hostname')", "Function 'file' is not allowed"),
    over("q_url", "SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')", "'url' is not allowed"),
    node("node_file", "SELECT * FROM file('/etc/passwd', 'LineAsString')", "'file' is not allowed"),
    node(
        "node_executable",
        "SELECT * FROM executable('id', 'LineAsString', 'x String')",
        "'executable' is not allowed",
    ),
]

STATEMENTS = [
    sql("settings", "SELECT * FROM events SETTINGS readonly = 0", "SETTINGS clauses are not allowed"),
    sql(
        "settings_limits",
        "SELECT count() FROM numbers(10) SETTINGS max_rows_to_read = 0",
        "SETTINGS clauses are not allowed",
    ),
    sql(
        "settings_in_subquery",
        "SELECT * FROM (SELECT 1 SETTINGS max_threads = 1)",
        "SETTINGS clauses are not allowed",
    ),
    sql(
        "settings_in_cte",
        "WITH t AS (SELECT 1 SETTINGS allow_ddl = 1) SELECT * FROM t",
        "SETTINGS clauses are not allowed",
    ),
    sql("set", "SET readonly = 0", READ_ONLY),
    sql("set_then_select", "SET max_execution_time = 0; SELECT 1", ONE_STATEMENT),
    sql("into_outfile", "SELECT * FROM events INTO OUTFILE '%PWN%'", READ_ONLY),
    sql("into_outfile_absolute", "SELECT * FROM events INTO OUTFILE '%PWN_ABS%' FORMAT CSV", READ_ONLY),
    sql(
        "into_outfile_after_format", "SELECT 1 FORMAT CSV INTO OUTFILE '%PWN%'", "INTO OUTFILE is not allowed"
    ),
    sql("multi_drop", "SELECT 1; DROP TABLE events", ONE_STATEMENT),
    sql("multi_physical_drop", "SELECT 1; DROP TABLE %A_DB%.%A_EVENTS%", ONE_STATEMENT),
    sql("multi_selects", "SELECT 1; SELECT 2", ONE_STATEMENT),
    sql("multi_after_comment", "SELECT 1 /* x */; INSERT INTO events VALUES (1, 'x', 1)", ONE_STATEMENT),
    sql("multi_explain", "EXPLAIN AST SELECT 1; DROP TABLE %A_DB%.%A_EVENTS%", ONE_STATEMENT),
    sql_body("multi_in_body", "SELECT 1;\nTRUNCATE TABLE %A_DB%.%A_EVENTS%", ONE_STATEMENT),
    sql("create_table", "CREATE TABLE x (a UInt8) ENGINE = File(CSV)", READ_ONLY),
    sql("create_database", "CREATE DATABASE pwned", READ_ONLY),
    sql("create_function", "CREATE FUNCTION pwned AS x -> x", READ_ONLY),
    sql(
        "create_dictionary",
        "CREATE DICTIONARY d (id UInt64) PRIMARY KEY id SOURCE(FILE(path '/etc/passwd' format 'CSV')) LAYOUT(FLAT()) LIFETIME(0)",
        READ_ONLY,
    ),
    sql("drop_table", "DROP TABLE events", READ_ONLY),
    sql("drop_physical_table", "DROP TABLE %A_DB%.%A_EVENTS%", READ_ONLY),
    sql("drop_database", "DROP DATABASE %B_DB%", READ_ONLY),
    sql("truncate", "TRUNCATE TABLE %A_DB%.%A_EVENTS%", READ_ONLY),
    sql("rename", "RENAME TABLE %A_DB%.%A_EVENTS% TO %A_DB%.x", READ_ONLY),
    sql("exchange", "EXCHANGE TABLES %A_DB%.%A_EVENTS% AND %B_DB%.%B_EVENTS%", READ_ONLY),
    sql("detach", "DETACH TABLE %A_DB%.%A_EVENTS%", READ_ONLY),
    sql("attach", "ATTACH TABLE %A_DB%.%A_EVENTS%", READ_ONLY),
    sql("insert", "INSERT INTO %A_DB%.%A_EVENTS% VALUES (99, 'x', 1)", READ_ONLY),
    sql("insert_select", f"INSERT INTO %A_DB%.%A_EVENTS% SELECT id, s, 0 FROM {B}", READ_ONLY),
    sql("delete", "DELETE FROM %A_DB%.%A_EVENTS% WHERE 1", READ_ONLY),
    sql("update", "UPDATE %A_DB%.%A_EVENTS% SET value = 0 WHERE 1", READ_ONLY),
    sql("alter_delete", "ALTER TABLE %A_DB%.%A_EVENTS% DELETE WHERE 1", READ_ONLY),
    sql("alter_add_column", "ALTER TABLE %A_DB%.%A_EVENTS% ADD COLUMN x UInt8", READ_ONLY),
    sql("optimize", "OPTIMIZE TABLE %A_DB%.%A_EVENTS% FINAL", READ_ONLY),
    sql("system_stop_merges", "SYSTEM STOP MERGES", READ_ONLY),
    sql("system_shutdown", "SYSTEM SHUTDOWN", READ_ONLY),
    sql("system_drop_cache", "SYSTEM DROP MARK CACHE", READ_ONLY),
    sql("kill_query", "KILL QUERY WHERE 1", READ_ONLY),
    sql("kill_mutation", "KILL MUTATION WHERE 1", READ_ONLY),
    sql("use", "USE %B_DB%", READ_ONLY),
    sql("backup", "BACKUP TABLE %A_DB%.%A_EVENTS% TO File('%PWN%')", READ_ONLY),
    sql("grant", "GRANT ALL ON *.* TO default", READ_ONLY),
    sql("create_user", "CREATE USER pwned", READ_ONLY),
    sql("transaction", "BEGIN TRANSACTION", READ_ONLY),
    sql("explain", "EXPLAIN SELECT 1", "EXPLAIN statements are not allowed"),
    sql("show_tables", "SHOW TABLES FROM %B_DB%", "SHOW statements are not allowed"),
    sql("exists", "EXISTS TABLE %B_DB%.%B_SECRET%", "EXISTS statements are not allowed"),
    sql("check", "CHECK TABLE %A_DB%.%A_EVENTS%", "CHECK statements are not allowed"),
    sql("ddl_in_cte", "WITH x AS (DROP TABLE events) SELECT 1", "Syntax error"),
    sql("ddl_in_parentheses", "(DROP TABLE events)", "Syntax error"),
    sql_body("ddl_in_body", "DROP TABLE events", READ_ONLY),
    Case("ddl_in_form", "POST", "/v0/sql", 400, READ_ONLY, data={"q": "TRUNCATE TABLE events"}),
    over("q_drop", "DROP TABLE events", READ_ONLY),
    over("q_insert", "INSERT INTO events SELECT * FROM _", READ_ONLY),
    over("q_multi", "SELECT * FROM _; DROP TABLE events", ONE_STATEMENT),
    over("q_settings", "SELECT * FROM _ SETTINGS max_threads = 1", "SETTINGS clauses are not allowed"),
    over("q_outfile", "SELECT * FROM _ INTO OUTFILE '%PWN%'", READ_ONLY),
    over("q_system", "SYSTEM STOP MERGES", READ_ONLY),
    over("q_kill", "KILL QUERY WHERE 1", READ_ONLY),
    over("q_use", "USE system", READ_ONLY),
    over("q_optimize", "OPTIMIZE TABLE events", READ_ONLY),
    over("q_alter", "ALTER TABLE events DELETE WHERE 1", READ_ONLY),
    over("q_attach", "ATTACH TABLE events", READ_ONLY),
    over("q_format", "SELECT * FROM _ FORMAT Native", "Leave FORMAT out of 'q'"),
    node("node_drop", "DROP TABLE events", READ_ONLY),
    node("node_multi", "SELECT 1; DROP TABLE events", ONE_STATEMENT),
    node(
        "node_settings",
        "SELECT * FROM events SETTINGS max_execution_time = 0",
        "SETTINGS clauses are not allowed",
    ),
    node("node_outfile", "SELECT * FROM events INTO OUTFILE '%PWN%'", READ_ONLY),
]

ROWS_LIMIT = "max_rows_to_read"

RESOURCE_BOMBS = [
    sql("numbers_trillion", "SELECT * FROM numbers(1e12)", ROWS_LIMIT),
    sql("count_numbers_trillion", "SELECT count() FROM numbers(1e12)", ROWS_LIMIT),
    sql("numbers_mt", "SELECT count() FROM numbers_mt(1e12)", ROWS_LIMIT),
    sql("generate_series", "SELECT sum(generate_series) FROM generate_series(1, 1000000000000)", ROWS_LIMIT),
    sql("group_array_billions", "SELECT groupArray(number) FROM numbers(2e9)", ROWS_LIMIT),
    sql("numbers_streamed_csv", "SELECT * FROM numbers(1e12) FORMAT CSV", ROWS_LIMIT),
    sql(
        "huge_result",
        "SELECT materialize(repeat('x', 1000000)) FROM numbers(200)",
        "Limit for result exceeded",
    ),
    sql(
        "generate_random",
        "SELECT * FROM generateRandom('a String, b Array(UInt64)') LIMIT 10",
        "'generateRandom' is not allowed",
    ),
    sql("zeros", "SELECT count() FROM zeros(1e12)", "'zeros' is not allowed"),
    sql("sleep_each_row", "SELECT sleepEachRow(1) FROM numbers(10)", "'sleepEachRow' is not allowed"),
    sql("sleep", "SELECT sleep(3)", "'sleep' is not allowed"),
    sql("range_huge", "SELECT range(toUInt64(1e10))", "array elements"),
    sql("range_in_lambda", "SELECT arrayMap(x -> x, range(1000000000))", "array elements"),
    sql("repeat_huge", "SELECT repeat('a', toUInt64(1e10))", "Too large string size"),
    sql("repeat_many", "SELECT repeat('a', 200000000)", "Too many times to repeat"),
    sql_body("deep_parentheses", "SELECT " + "(" * 5000 + "1" + ")" * 5000, "nested too deeply"),
    sql_body(
        "deep_subqueries",
        "SELECT * FROM " + "(SELECT * FROM " * 500 + "events" + ")" * 500,
        "nested too deeply",
    ),
    sql_body("deep_arrays", "SELECT " + "[" * 3000 + "]" * 3000, "nested too deeply"),
    sql(
        "recursive_cte",
        "WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t) SELECT count() FROM t",
        "recursive CTE",
    ),
    sql(
        "cross_join",
        "SELECT count() FROM numbers(100000) AS a, numbers(100000) AS b WHERE a.number + b.number = 7",
        "time limit",
        status=408,
        slow=True,
    ),
    over("q_numbers", "SELECT * FROM numbers(1e12)", ROWS_LIMIT),
    Case("param_numbers", "GET", "/v0/pipes/gen.json", 400, ROWS_LIMIT, params={"n": "1000000000000"}),
    Case(
        "param_repeat",
        "GET",
        "/v0/pipes/gen.json",
        400,
        "in function repeat",
        params={"times": "2000000000", "n": "1"},
    ),
    # a constant column counts once per block against max_result_bytes: the answer is bounded itself
    Case(
        "param_constant_answer",
        "GET",
        "/v0/pipes/gen.json",
        400,
        "Limit for result exceeded",
        params={"times": "1000000", "n": "450"},
        slow=True,
    ),
    # streamed formats start answering before a limit is hit: the body is cut (the connection aborted)
    sql("streamed_past_limit", "SELECT number FROM numbers(2e7) FORMAT CSV", "Limit for result exceeded"),
]

RESOURCE_BOMBS_XFAIL = {
    "streamed_past_limit": "a streamed answer (CSV, NDJSON, Parquet) has sent its 200 before the limit is hit; "
    "the body is then cut instead of a 4xx (see the report)",
}
