"""`tody datasource append|replace NAME URL`: the server imports from the URL in a job."""

from __future__ import annotations

import gzip
import re

import httpx
import orjson
from click.testing import CliRunner

from tody.cli.main import cli


def run(live_server, token, *args):
    return CliRunner().invoke(cli, [*args, "--host", live_server, "--token", token], catch_exceptions=False)


def create(live_server, token, name="ev"):
    res = httpx.post(
        f"{live_server}/v0/datasources",
        data={"name": name, "schema": "`id` UInt64, `name` String"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert res.status_code == 200, res.text


def test_append_and_replace_from_a_url(live_server, workspace_token, file_server, private_urls):
    create(live_server, workspace_token)
    (file_server.dir / "rows.csv").write_text("1,a\n2,b\nbad,c\n")
    res = run(
        live_server, workspace_token, "datasource", "append", "ev", file_server.url("rows.csv"), "--wait"
    )
    assert res.exit_code == 0, res.output
    assert re.search(r"Import job [0-9a-f-]{36} started", res.output)
    assert "2 row(s) appended to 'ev'; 1 row(s) in ev_quarantine" in res.output

    res = run(live_server, workspace_token, "datasource", "append", "ev", file_server.url("rows.csv"))
    assert res.exit_code == 0, res.output
    job_id = re.search(r"Import job (\S+) started", res.output).group(1)
    res = run(live_server, workspace_token, "job", "ls", "--format", "json")
    assert job_id in [j["id"] for j in orjson.loads(res.output)["jobs"]]

    (file_server.dir / "new.csv.gz").write_bytes(gzip.compress(b"9,z\n"))
    res = run(
        live_server,
        workspace_token,
        "datasource",
        "replace",
        "ev",
        file_server.url("new.csv.gz"),
        "--wait",
        "--yes",
    )
    assert res.exit_code == 0, res.output
    assert "1 row(s) now in 'ev'" in res.output
    res = run(live_server, workspace_token, "sql", "SELECT id FROM ev")
    assert orjson.loads(res.output)["data"] == [{"id": 9}]


def test_a_failed_url_import_exits_non_zero(live_server, workspace_token, file_server, private_urls):
    create(live_server, workspace_token)
    url = file_server.url("missing.csv")
    res = run(live_server, workspace_token, "datasource", "append", "ev", url, "--wait")
    assert res.exit_code == 1
    assert "ended error" in res.output and "404" in res.output and url in res.output


def test_private_urls_are_refused_and_bad_paths_are_usage_errors(live_server, workspace_token, file_server):
    create(live_server, workspace_token)
    res = run(live_server, workspace_token, "datasource", "append", "ev", file_server.url("rows.csv"))
    assert res.exit_code == 1 and "HTTP 400" in res.output and "private" in res.output
    res = run(live_server, workspace_token, "datasource", "append", "ev", "no/such/file.csv")
    assert res.exit_code == 2 and "neither a file nor an http(s):// URL" in res.output


def test_replace_with_a_sql_condition(live_server, workspace_token, tmp_path, file_server, private_urls):
    create(live_server, workspace_token)
    first = tmp_path / "rows.csv"
    first.write_text("1,a\n2,b\n3,c\n")
    assert run(live_server, workspace_token, "datasource", "append", "ev", str(first)).exit_code == 0
    (tmp_path / "new.csv").write_text("2,B\n9,Z\n")
    res = run(
        live_server,
        workspace_token,
        "datasource",
        "replace",
        "ev",
        str(tmp_path / "new.csv"),
        "--sql-condition",
        "id = 2",
        "--yes",
    )
    assert res.exit_code == 0, res.output
    res = run(live_server, workspace_token, "sql", "SELECT id, name FROM ev ORDER BY id")
    assert orjson.loads(res.output)["data"] == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "B"},
        {"id": 3, "name": "c"},
    ]
    (file_server.dir / "more.csv").write_text("3,C\n")
    args = ["datasource", "replace", "ev", file_server.url("more.csv"), "--sql-condition", "id >= 3"]
    res = run(live_server, workspace_token, *args, "--wait", "--yes")
    assert res.exit_code == 0, res.output
    res = run(live_server, workspace_token, "sql", "SELECT id, name FROM ev ORDER BY id")
    assert [r["name"] for r in orjson.loads(res.output)["data"]] == ["a", "B", "C"]
    res = run(
        live_server, workspace_token, *args[:3], str(tmp_path / "new.csv"), "--sql-condition", "nope", "--yes"
    )
    assert res.exit_code == 1 and "replace_condition" in res.output and "HTTP 400" in res.output
