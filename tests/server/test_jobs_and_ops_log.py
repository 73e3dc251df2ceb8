"""Jobs (delete by condition) and the operations log, through the ASGI app."""

from __future__ import annotations

import pytest
from api_helpers import poll

from tody.catalog.store import JobRecord, utcnow
from tody.services.jobs import RESTARTED, JobService


def test_delete_by_condition_runs_as_a_job(client, make_events):
    make_events(rows=30)
    dry = client.post(
        "/v0/datasources/events/delete", data={"delete_condition": "id < 10", "dry_run": "true"}
    )
    assert dry.json() == {"rows_to_be_deleted": 10}
    res = client.post("/v0/datasources/events/delete", data={"delete_condition": "id < 10"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["job_id"] and body["job_url"].endswith(f"/v0/jobs/{body['job_id']}")
    job = poll(
        lambda: client.get(f"/v0/jobs/{body['job_id']}").json(), lambda j: j["status"] in ("done", "error")
    )
    assert job["status"] == "done", job
    assert job["kind"] == "delete_data" and job["rows_affected"] == 10 and job["block_log"] == []
    assert client.get("/v0/sql", params={"q": "SELECT count() AS c FROM events"}).json()["data"] == [
        {"c": 20}
    ]
    listed = client.get("/v0/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [body["job_id"]]
    res = client.post(f"/v0/jobs/{body['job_id']}/cancel")
    assert res.status_code == 400 and "done" in res.json()["error"]


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [("", "delete_condition"), ("nope > 1", "nope"), ("id IN (SELECT 1)", ""), ("1; DROP TABLE x", "")],
)
def test_bad_delete_conditions_are_400(client, make_events, condition, fragment):
    make_events(rows=5)
    res = client.post("/v0/datasources/events/delete", data={"delete_condition": condition})
    assert res.status_code == 400 and fragment in res.json()["error"]
    assert client.get("/v0/sql", params={"q": "SELECT count() AS c FROM events"}).json()["data"] == [{"c": 5}]


def test_unknown_job_is_404(client):
    assert client.get("/v0/jobs/nope").status_code == 404
    assert client.post("/v0/jobs/nope/cancel").status_code == 404


def test_jobs_left_running_end_as_error_after_a_restart(platform, workspace):
    now = utcnow()
    stuck = JobRecord(
        id="stuck-" + workspace.id,
        workspace_id=workspace.id,
        kind="import",
        status="working",
        datasource_id=None,
        pipe_id=None,
        progress=0.4,
        params={},
        result={},
        error=None,
        created_at=now,
        updated_at=now,
        started_at=now,
    )
    platform.catalog.add_job(stuck)
    restarted = JobService(platform.catalog)  # what a server start does
    logged = []
    restarted.finish_hooks.append(logged.append)
    try:
        assert restarted.fail_unfinished() >= 1
        after = platform.catalog.job_by_id(stuck.id)
        assert after.status == "error" and after.error == RESTARTED
        assert after in logged  # it reaches tinybird.jobs_log like any job that ends
    finally:
        restarted.close()


def test_operations_are_logged_per_workspace(client, other_client, make_events):
    make_events(rows=3)
    client.put("/v0/datasources/events", data={"name": "renamed"})
    client.post("/v0/datasources/renamed/truncate")
    client.delete("/v0/datasources/renamed")
    q = "SELECT event_type, datasource_name, result FROM tinybird.datasources_ops_log ORDER BY timestamp"
    rows = poll(lambda: client.get("/v0/sql", params={"q": q}).json()["data"], lambda r: len(r) >= 4)
    assert [(r["event_type"], r["result"]) for r in rows] == [
        ("create", "ok"),
        ("rename", "ok"),
        ("truncate", "ok"),
        ("delete", "ok"),
    ]
    assert other_client.get("/v0/sql", params={"q": q}).json()["data"] == []
