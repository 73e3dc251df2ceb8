"""`tody pipe populate` against a real HTTP server (the test session's app on a free port)."""

from __future__ import annotations

import httpx
from click.testing import CliRunner

from tody.cli.main import cli


def test_pipe_populate_with_condition_and_truncate(live_server, workspace_token):
    headers = {"Authorization": f"Bearer {workspace_token}"}

    def call(method, path, **kwargs):
        res = httpx.request(method, f"{live_server}{path}", headers=headers, timeout=30, **kwargs)
        assert res.status_code < 300, res.text
        return res.json()

    call("POST", "/v0/datasources", data={"name": "nums", "schema": "`n` UInt64 `json:$.n`"})
    call("POST", "/v0/datasources", data={"name": "tens", "schema": "`n` UInt64"})
    body = b"".join(b'{"n":%d}\n' % i for i in range(30))
    call("POST", "/v0/events", params={"name": "nums", "wait": "true"}, content=body)
    node = {
        "name": "q",
        "sql": "SELECT n FROM nums WHERE n % 10 = 0",
        "type": "materialized",
        "datasource": "tens",
    }
    call("POST", "/v0/pipes", json={"name": "tens_mv", "nodes": [node]})

    def populate(*args):
        cmd = [
            "pipe",
            "populate",
            "tens_mv",
            *args,
            "--wait",
            "--host",
            live_server,
            "--token",
            workspace_token,
        ]
        return CliRunner().invoke(cli, cmd, catch_exceptions=False)

    res = populate("--sql-condition", "n < 15")
    assert res.exit_code == 0, res.output
    assert "2 row(s) written into 'tens'" in res.output
    res = populate("--truncate")
    assert res.exit_code == 0 and "3 row(s)" in res.output, res.output
    got = call(
        "GET", "/v0/sql", params={"q": "SELECT groupArray(n) AS ns FROM (SELECT n FROM tens ORDER BY n)"}
    )
    assert got["data"] == [{"ns": [0, 10, 20]}]
    res = populate("--node", "nope")
    assert res.exit_code != 0
