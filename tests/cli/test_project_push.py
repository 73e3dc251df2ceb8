"""`tody push`, `tody pull` and `tody diff` on a sample project against a real server: dependency order,
tokens, fixtures, the push → pull → push round trip with no change, --force for pipes and data sources,
--dry-run."""

from __future__ import annotations

import re

import httpx
import orjson
import pytest
from cli_helpers import ok, run
from project_sample import write_project

from tody.cli.client import Client
from tody.cli.project.push import push_project


def lines(output: str) -> dict[tuple[str, str], str]:
    """{(kind, name): status} from push output lines (`status kind name  (detail)`)."""
    out = {}
    for line in output.splitlines():
        m = LINE.match(line)
        if m:
            out[(m.group(2), m.group(3))] = m.group(1)
    return out


def sql(live_server, token, query):
    res = httpx.get(f"{live_server}/v0/sql", params={"q": query + " FORMAT JSON"}, headers=_auth(token))
    assert res.status_code == 200, res.text
    return res.json()["data"]


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


LINE = re.compile(r"(would \w+|\w+) +(datasource|pipe|token|fixture|project) +(\S+)")
RESOURCES = {
    ("datasource", "events"),
    ("datasource", "events_by_day"),
    ("datasource", "snapshot"),
    ("pipe", "top_users"),
    ("pipe", "a_summary"),
    ("pipe", "events_by_day_mv"),
    ("pipe", "snapshot_copy"),
}


@pytest.fixture
def project(tmp_path):
    return write_project(tmp_path / "project")


@pytest.fixture
def pushed(live_server, workspace_token, project):
    res = ok(run(live_server, "push", "--fixtures", "--folder", str(project), token=workspace_token))
    return res.output


def test_push_creates_everything_in_dependency_order(live_server, workspace_token, pushed):
    statuses = lines(pushed)
    assert {k for k, v in statuses.items() if k[0] in ("datasource", "pipe") and v == "created"} == RESOURCES
    order = [
        m.group(3) for m in map(LINE.match, pushed.splitlines()) if m and m.group(2) in ("datasource", "pipe")
    ]
    assert order.index("top_users") < order.index("a_summary")  # a pipe after the pipe it reads
    assert order.index("events_by_day") < order.index("events_by_day_mv")  # an MV after its target
    assert order.index("snapshot") < order.index("snapshot_copy")
    assert max(order.index(n) for n in ("events", "events_by_day", "snapshot")) < order.index("a_summary")
    assert statuses[("fixture", "events")] == "appended"
    assert "10 created, 1 appended." in pushed  # 7 resources and 3 tokens
    # tokens: created with the scopes of their TOKEN lines
    tokens = {
        t["name"]: t
        for t in httpx.get(f"{live_server}/v0/tokens", headers=_auth(workspace_token)).json()["tokens"]
    }
    assert {"type": "DATASOURCES:READ", "resource": "events"} in tokens["app_read"]["scopes"]
    assert {"type": "DATASOURCES:APPEND", "resource": "events"} in tokens["ingest"]["scopes"]
    assert {"type": "PIPES:READ", "resource": "top_users"} in tokens["dashboard"]["scopes"]

    # the endpoint answers with its params, and with the TOKEN line's token
    url = f"{live_server}/v0/pipes/top_users.json"
    body = httpx.get(url, params={"event": "click", "token": tokens["dashboard"]["token"]}).json()
    assert body["data"] == [
        {"user_id": "u1", "hits": 2, "total": 4.5},
        {"user_id": "u2", "hits": 1, "total": 2.5},
    ]
    assert httpx.get(url, params={"event": "view", "limit": 1}, headers=_auth(workspace_token)).json()[
        "data"
    ] == [{"user_id": "u1", "hits": 1, "total": 0}]
    # a pipe without TYPE is published at its last node, as tb push does; it reads the other pipe
    body = httpx.get(f"{live_server}/v0/pipes/a_summary.json", headers=_auth(workspace_token)).json()
    assert body["data"] == [{"users": 2}]
    # the fixtures went through the materialized view into the AggregatingMergeTree target
    assert sql(live_server, workspace_token, "SELECT countMerge(total) AS n FROM events_by_day") == [{"n": 4}]


def test_push_again_and_pull_push_round_trip_change_nothing(
    live_server, workspace_token, pushed, tmp_path, project
):
    again = ok(run(live_server, "push", "--folder", str(project), token=workspace_token)).output
    assert set(lines(again).values()) == {"unchanged"}, again

    fresh = tmp_path / "pulled"
    fresh.mkdir()
    out = ok(run(live_server, "pull", "--folder", str(fresh), token=workspace_token)).output
    assert (fresh / "datasources" / "events.datasource").is_file()
    assert (fresh / "pipes" / "top_users.pipe").is_file()
    assert "TOKEN app_read READ" in (fresh / "datasources" / "events.datasource").read_text()
    assert out.count("written") == len(RESOURCES)

    res = ok(run(live_server, "push", "--folder", str(fresh), token=workspace_token))
    statuses = lines(res.output)
    assert {k for k in statuses if k[0] in ("datasource", "pipe")} == RESOURCES
    assert set(statuses.values()) == {"unchanged"}, res.output
    assert ("token", "dashboard") in statuses

    ok(run(live_server, "diff", "--folder", str(project), token=workspace_token))
    ok(run(live_server, "diff", "--folder", str(fresh), token=workspace_token))

    # pull into the original project: every file already says the same, and none is rewritten
    before = {p: p.read_text() for p in project.rglob("*.*")}
    out = ok(run(live_server, "pull", "--folder", str(project), token=workspace_token)).output
    assert "written" not in out and out.count("unchanged") == len(RESOURCES)
    assert "endpoints/top_users.pipe" in out  # the file stays where the project keeps it
    assert {p: p.read_text() for p in project.rglob("*.*")} == before


def test_changed_pipe_diff_refuse_then_force(live_server, workspace_token, pushed, project):
    path = project / "endpoints" / "top_users.pipe"
    path.write_text(path.read_text().replace("sum(amount) AS total", "round(sum(amount)) AS total"))

    res = run(live_server, "diff", "--folder", str(project), token=workspace_token)
    assert res.exit_code == 1
    assert "+    SELECT user_id, count() AS hits, round(sum(amount)) AS total" in res.output
    assert "-    SELECT user_id, count() AS hits, sum(amount) AS total" in res.output

    res = run(live_server, "push", "--folder", str(project), token=workspace_token)
    assert res.exit_code == 1
    assert lines(res.output)[("pipe", "top_users")] == "failed"
    assert "--force" in res.output and "round(sum(amount))" in res.output
    assert lines(res.output)[("pipe", "a_summary")] == "skipped"  # it reads the refused pipe

    res = run(live_server, "push", "--dry-run", "--force", "--folder", str(project), token=workspace_token)
    assert res.exit_code == 0, res.output
    assert lines(res.output)[("pipe", "top_users")] == "would update"
    url = f"{live_server}/v0/pipes/top_users.json"
    assert httpx.get(url, headers=_auth(workspace_token)).json()["data"][0]["total"] == 4.5

    res = ok(run(live_server, "push", "--force", "--folder", str(project), token=workspace_token))
    assert lines(res.output)[("pipe", "top_users")] == "updated"
    assert lines(res.output)[("pipe", "a_summary")] == "unchanged"
    assert httpx.get(url, headers=_auth(workspace_token)).json()["data"][0]["total"] == 4
    ok(run(live_server, "diff", "--folder", str(project), token=workspace_token))


def test_added_column_is_altered_in_place_with_force(live_server, workspace_token, pushed, project):
    path = project / "datasources" / "events.datasource"
    text = path.read_text()
    path.write_text(
        text.replace(
            "`amount` Float64 `json:$.amount`",
            "`amount` Float64 `json:$.amount`,\n    `country` String `json:$.country` DEFAULT 'none'",
        ).replace("Raw events", "Raw events, with country")
    )
    res = run(live_server, "push", "--folder", str(project), token=workspace_token)
    assert res.exit_code == 1 and "+    `country` String `json:$.country` DEFAULT 'none'" in res.output

    res = ok(
        run(live_server, "push", "--force", "--dry-run", "--folder", str(project), token=workspace_token)
    )
    assert "ADD COLUMN" in res.output and lines(res.output)[("datasource", "events")] == "would update"
    assert (
        "country"
        not in httpx.get(
            f"{live_server}/v0/datasources/events.datasource", headers=_auth(workspace_token)
        ).text
    )

    res = ok(run(live_server, "push", "--force", "--yes", "--folder", str(project), token=workspace_token))
    assert lines(res.output)[("datasource", "events")] == "updated"
    assert sql(live_server, workspace_token, "SELECT DISTINCT country FROM events") == [{"country": "none"}]
    ok(run(live_server, "diff", "--folder", str(project), token=workspace_token))


def test_unsafe_datasource_change_is_refused_even_with_force(live_server, workspace_token, pushed, project):
    path = project / "datasources" / "snapshot.datasource"
    path.write_text(path.read_text().replace("`c` UInt64", "`c` Int64"))
    res = run(live_server, "push", "--force", "--yes", "--folder", str(project), token=workspace_token)
    assert res.exit_code == 1
    assert lines(res.output)[("datasource", "snapshot")] == "failed"
    assert "cannot be altered in place" in res.output
    assert "-    `c` UInt64" in res.output and "+    `c` Int64" in res.output
    assert lines(res.output)[("pipe", "snapshot_copy")] == "skipped"


def test_dry_run_changes_nothing(live_server, workspace_token, project):
    res = ok(
        run(live_server, "push", "--dry-run", "--fixtures", "--folder", str(project), token=workspace_token)
    )
    statuses = lines(res.output)
    assert {k for k, v in statuses.items() if v == "would create" and k[0] != "token"} == RESOURCES
    assert statuses[("fixture", "events")] == "would append"
    assert "Dry run" in res.output
    listed = httpx.get(f"{live_server}/v0/datasources", headers=_auth(workspace_token)).json()["datasources"]
    assert listed == []


def test_push_some_files_and_push_project_function(live_server, workspace_token, project):
    res = ok(
        run(
            live_server,
            "push",
            str(project / "datasources" / "events.datasource"),
            "--folder",
            str(project),
            token=workspace_token,
        )
    )
    assert set(lines(res.output)) == {("datasource", "events"), ("token", "app_read"), ("token", "ingest")}

    printed: list[str] = []
    summary = push_project(Client(live_server, workspace_token), project, echo=printed.append)
    assert summary.ok
    assert summary.of("datasource") == {
        "events": "unchanged",
        "events_by_day": "created",
        "snapshot": "created",
    }
    assert summary.of("pipe")["top_users"] == "created"
    assert printed[-1] == summary.line()


def test_bad_datafile_fails_its_resource_and_its_dependents(live_server, workspace_token, project):
    (project / "datasources" / "snapshot.datasource").write_text("SCHEMA >\n    `c` NotAType\n")
    res = run(live_server, "push", "--folder", str(project), token=workspace_token)
    assert res.exit_code == 1
    statuses = lines(res.output)
    assert statuses[("datasource", "snapshot")] == "failed"
    assert statuses[("pipe", "snapshot_copy")] == "skipped"
    assert statuses[("pipe", "top_users")] == "created"
    assert "NotAType" in res.output


def test_json_listing_after_push(live_server, workspace_token, pushed):
    res = ok(run(live_server, "pipe", "ls", "--format", "json", token=workspace_token))
    assert {p["name"] for p in orjson.loads(res.output)["pipes"]} == {n for k, n in RESOURCES if k == "pipe"}
