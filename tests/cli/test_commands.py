"""`tody sql` and `tody datasource` against a real HTTP server (the test session's app on a free port)."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from tody.cli.main import cli


def run(live_server, token, *args):
    result = CliRunner().invoke(cli, [*args, "--host", live_server, "--token", token], catch_exceptions=False)
    return result


def test_datasource_create_ls_and_sql(live_server, workspace_token, tmp_path, datafile_text):
    path = tmp_path / "page_views.datasource"
    path.write_text(datafile_text)
    res = run(live_server, workspace_token, "datasource", "create", str(path))
    assert res.exit_code == 0, res.output
    assert "page_views" in res.output

    res = run(live_server, workspace_token, "datasource", "ls", "--format", "json")
    assert res.exit_code == 0, res.output
    assert [d["name"] for d in orjson.loads(res.output)["datasources"]] == ["page_views"]

    res = run(live_server, workspace_token, "datasource", "ls")
    assert res.exit_code == 0 and "page_views" in res.output

    res = run(live_server, workspace_token, "sql", "SELECT count() AS c FROM page_views")
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["data"] == [{"c": 0}]

    res = run(live_server, workspace_token, "sql", "SELECT 1 AS one", "--format", "csv")
    assert res.output == '"one"\n1\n'


def test_errors_exit_non_zero_with_the_message(live_server, workspace_token):
    res = run(live_server, workspace_token, "sql", "SELECT * FROM missing_table")
    assert res.exit_code == 1
    assert "missing_table" in res.output and "HTTP 400" in res.output
    res = run(live_server, "p.wrong", "datasource", "ls")
    assert res.exit_code == 1 and "Invalid token" in res.output


def test_unreachable_server_is_a_clear_error(workspace_token):
    res = CliRunner().invoke(cli, ["sql", "SELECT 1", "--host", "http://127.0.0.1:9", "--token", "x"])
    assert res.exit_code == 1 and "Cannot reach the server" in res.output


def test_pipe_ls_data_url_rm(live_server, workspace_token, platform):
    import httpx

    headers = {"Authorization": f"Bearer {workspace_token}"}
    body = {
        "name": "hello",
        "nodes": [{"name": "n", "type": "endpoint", "sql": "%\nSELECT {{Int32(x, 1)}} * 2 AS doubled"}],
    }
    assert httpx.post(f"{live_server}/v0/pipes", json=body, headers=headers).status_code == 200

    res = run(live_server, workspace_token, "pipe", "ls", "--format", "json")
    assert [p["name"] for p in orjson.loads(res.output)["pipes"]] == ["hello"]
    res = run(live_server, workspace_token, "pipe", "data", "hello", "--x", "21")
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["data"] == [{"doubled": 42}]
    res = run(live_server, workspace_token, "pipe", "data", "hello", "--x", "21", "--format", "csv")
    assert res.output == '"doubled"\n42\n'

    res = run(live_server, workspace_token, "pipe", "url", "hello", "--x", "5")
    url = res.output.strip()
    assert url.startswith(f"{live_server}/v0/pipes/hello.json?x=5&token=")
    assert httpx.get(url).json()["data"] == [{"doubled": 10}]

    res = run(live_server, workspace_token, "pipe", "rm", "hello", "--yes")
    assert res.exit_code == 0, res.output
    res = run(live_server, workspace_token, "pipe", "data", "hello")
    assert res.exit_code == 1 and "HTTP 404" in res.output


def test_datasource_truncate_delete_and_jobs(
    live_server, workspace_token, workspace, engine, tmp_path, datafile_text
):
    path = tmp_path / "page_views.datasource"
    path.write_text(datafile_text)
    assert run(live_server, workspace_token, "datasource", "create", str(path)).exit_code == 0
    import httpx

    ds = httpx.get(
        f"{live_server}/v0/datasources/page_views", headers={"Authorization": f"Bearer {workspace_token}"}
    )
    engine.execute(
        f"INSERT INTO {workspace.database}.{ds.json()['id']} (timestamp, pathname, duration_ms) "
        "SELECT now(), toString(number), number FROM numbers(10)"
    )
    res = run(
        live_server,
        workspace_token,
        "datasource",
        "delete",
        "page_views",
        "--sql-condition",
        "duration_ms < 4",
        "--dry-run",
    )
    assert res.exit_code == 0 and "4 row(s) would be deleted" in res.output
    res = run(
        live_server,
        workspace_token,
        "datasource",
        "delete",
        "page_views",
        "--sql-condition",
        "duration_ms < 4",
        "--wait",
        "--yes",
    )
    assert res.exit_code == 0, res.output
    assert "4 row(s) deleted" in res.output
    res = run(live_server, workspace_token, "job", "ls", "--format", "json")
    assert [j["kind"] for j in orjson.loads(res.output)["jobs"]] == ["delete_data"]
    res = run(live_server, workspace_token, "datasource", "truncate", "page_views", "--yes")
    assert res.exit_code == 0, res.output
    res = run(live_server, workspace_token, "sql", "SELECT count() AS c FROM page_views")
    assert orjson.loads(res.output)["data"] == [{"c": 0}]


def test_datasource_append_and_replace_files(live_server, workspace_token, tmp_path):
    import httpx

    headers = {"Authorization": f"Bearer {workspace_token}"}
    res = httpx.post(
        f"{live_server}/v0/datasources",
        data={"name": "ev", "schema": "`id` UInt64, `name` String"},
        headers=headers,
    )
    assert res.status_code == 200, res.text
    data = tmp_path / "rows.csv"
    data.write_text("1,a\n2,b\nbad,c\n")
    res = run(live_server, workspace_token, "datasource", "append", "ev", str(data))
    assert res.exit_code == 0, res.output
    assert "2 row(s) appended to 'ev'; 1 row(s) in ev_quarantine" in res.output
    nd = tmp_path / "rows.ndjson"
    nd.write_text('{"id": 9, "name": "z"}\n')
    httpx.post(
        f"{live_server}/v0/datasources",
        data={"name": "evj", "schema": "`id` UInt64 `json:$.id`"},
        headers=headers,
    )
    res = run(live_server, workspace_token, "datasource", "replace", "evj", str(nd), "--yes")
    assert res.exit_code == 0, res.output
    res = run(live_server, workspace_token, "sql", "SELECT count() AS c FROM ev")
    assert orjson.loads(res.output)["data"] == [{"c": 2}]
    res = run(live_server, workspace_token, "sql", "SELECT id FROM evj")
    assert orjson.loads(res.output)["data"] == [{"id": 9}]
