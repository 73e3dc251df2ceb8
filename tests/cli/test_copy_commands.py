"""`tody pipe copy run|pause|resume` against a real HTTP server (the test session's app on a free port)."""

from __future__ import annotations

import httpx
import orjson
from click.testing import CliRunner

from tody.cli.main import cli


def run(live_server, token, *args):
    return CliRunner().invoke(cli, [*args, "--host", live_server, "--token", token], catch_exceptions=False)


def test_copy_run_pause_resume(live_server, workspace_token):
    headers = {"Authorization": f"Bearer {workspace_token}"}

    def post(path, **kwargs):
        res = httpx.post(f"{live_server}{path}", headers=headers, **kwargs)
        assert res.status_code < 300, res.text
        return res

    post("/v0/datasources", data={"name": "nums", "schema": "`n` UInt64"})
    post("/v0/datasources", data={"name": "evens", "schema": "`n` UInt64"})
    post(
        "/v0/events",
        params={"name": "nums", "wait": "true"},
        content=b"".join(b'{"n":%d}\n' % i for i in range(10)),
    )
    node = {
        "name": "q",
        "sql": "%\nSELECT n FROM nums WHERE n % 2 = 0 AND n < {{UInt64(below, 10)}}",
        "type": "copy",
        "target_datasource": "evens",
        "copy_schedule": "0 0 1 1 *",
    }
    post("/v0/pipes", json={"name": "copy_evens", "nodes": [node]})

    res = run(
        live_server, workspace_token, "pipe", "copy", "run", "copy_evens", "--param", "below=5", "--wait"
    )
    assert res.exit_code == 0, res.output
    assert "Copy job" in res.output and "3 row(s) copied into 'evens' (append)" in res.output
    res = run(
        live_server, workspace_token, "pipe", "copy", "run", "copy_evens", "--mode", "replace", "--wait"
    )
    assert res.exit_code == 0, res.output
    assert "5 row(s) copied into 'evens' (replace)" in res.output
    res = run(live_server, workspace_token, "sql", "SELECT count() AS c FROM evens")
    assert orjson.loads(res.output)["data"] == [{"c": 5}]

    res = run(live_server, workspace_token, "pipe", "copy", "run", "copy_evens", "--param", "below")
    assert res.exit_code != 0 and "KEY=VALUE" in res.output
    res = run(live_server, workspace_token, "pipe", "copy", "run", "copy_evens", "--param", "below=x")
    assert res.exit_code == 1 and "HTTP 400" in res.output

    res = run(live_server, workspace_token, "pipe", "copy", "pause", "copy_evens")
    assert res.exit_code == 0 and "paused" in res.output
    res = run(live_server, workspace_token, "pipe", "copy", "resume", "copy_evens")
    assert res.exit_code == 0 and "resumed; next run at" in res.output
    res = run(live_server, workspace_token, "pipe", "copy", "pause", "nope")
    assert res.exit_code == 1 and "HTTP 404" in res.output
