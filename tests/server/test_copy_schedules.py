"""Scheduled copies: firings driven by a controllable clock (copies run on the real engine), skipping a
firing while the previous run works, pause/resume, cancel, and schedules kept across a restart."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from api_helpers import ok, sql, wait_job
from starlette.testclient import TestClient
from test_copy_pipes_api import SUMMARY, copy_pipe

HOURLY = "0 * * * *"
T0 = datetime(2031, 3, 1, 9, 30)  # far from the real clock: the server's own ticks never reach it


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _forget_schedules(platform) -> None:
    for rec in platform.catalog.copy_schedules():
        platform.catalog.delete_copy_schedule(rec.pipe_id)


@pytest.fixture
def clock(platform, monkeypatch):
    """The copy service's clock, set to T0; the server's scheduler thread ticks with it too. Schedules
    left by earlier tests of this process are forgotten first (at T0 they would all be due)."""
    _forget_schedules(platform)
    fake = Clock(T0)
    monkeypatch.setattr(platform.copies, "clock", fake)
    yield fake
    _forget_schedules(platform)


@pytest.fixture
def summary(client, make_events):
    make_events(rows=30)
    ok(
        client.post(
            "/v0/datasources", data={"name": "summary", "schema": SUMMARY, "engine_sorting_key": "event"}
        )
    )


@contextmanager
def busy_workers(platform, principal):
    """Occupy every job worker, so a copy job queued now stays `waiting` until the block ends."""
    release = threading.Event()
    started = threading.Barrier(platform.jobs._pool._max_workers + 1)

    def hold(ctx):
        started.wait(timeout=10)
        release.wait(timeout=30)
        return {}

    for _ in range(platform.jobs._pool._max_workers):
        platform.jobs.submit(principal, "query", hold)
    started.wait(timeout=10)
    try:
        yield
    finally:
        release.set()


def copy_jobs(client, pipe="summarize"):
    return [j for j in ok(client.get("/v0/jobs", params={"kind": "copy"}))["jobs"] if j["pipe_name"] == pipe]


def fire(platform, client, at: datetime) -> list[str]:
    """Tick at `at` and wait for what it started. The server's thread may tick first: either way a due
    copy fires once, so the jobs are read from the API rather than from the tick's return."""
    before = {j["id"] for j in copy_jobs(client)}
    platform.copies.clock.now = at
    platform.scheduler.tick(at)
    new = [j["id"] for j in copy_jobs(client) if j["id"] not in before]
    for job_id in new:
        assert wait_job(client, job_id)["status"] == "done"
    return new


def test_two_firings_make_two_runs(client, platform, clock, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(copy_schedule=HOURLY)))
    pipe = ok(client.get("/v0/pipes/summarize"))
    assert pipe["schedule"]["next_run_at"] == "2031-03-01 10:00:00.000000"
    assert fire(platform, client, T0 + timedelta(minutes=29)) == []  # 09:59: not yet
    assert len(fire(platform, client, T0 + timedelta(minutes=30))) == 1  # 10:00
    assert fire(platform, client, T0 + timedelta(minutes=45)) == []  # 10:15: already ran for 10:00
    assert len(fire(platform, client, T0 + timedelta(minutes=95))) == 1  # 11:05: the 11:00 firing
    assert sql(client, "SELECT count() AS n FROM summary") == [{"n": 6}]  # two appends of 3 rows
    jobs = copy_jobs(client)
    assert len(jobs) == 2 and {j["origin"] for j in jobs} == {"schedule"}
    pipe = ok(client.get("/v0/pipes/summarize"))
    assert pipe["schedule"]["last_run_at"] == "2031-03-01 11:00:00.000000"
    assert pipe["schedule"]["next_run_at"] == "2031-03-01 12:00:00.000000"


def test_missed_firings_collapse_into_one_run(client, platform, clock, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(copy_schedule=HOURLY)))
    assert len(fire(platform, client, T0 + timedelta(hours=5))) == 1
    assert ok(client.get("/v0/pipes/summarize"))["schedule"]["last_run_at"] == "2031-03-01 14:00:00.000000"


def test_a_firing_while_the_copy_works_is_skipped(client, platform, clock, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(copy_schedule=HOURLY)))
    principal = platform.tokens.authenticate(client.headers["Authorization"].split()[1])
    with busy_workers(platform, principal):
        platform.scheduler.tick(T0 + timedelta(minutes=30))
        [first] = copy_jobs(client)
        assert first["status"] == "waiting"
        assert platform.scheduler.tick(T0 + timedelta(minutes=90)) == []  # 11:00: the 10:00 run still waits
        res = client.post("/v0/pipes/summarize/copy")
        assert res.status_code == 409 and first["id"] in res.json()["error"]
        cancelled = ok(client.post("/v0/pipes/summarize/copy/cancel"))
        assert cancelled["job_id"] == first["id"] and cancelled["status"] == "cancelled"
    assert wait_job(client, first["id"])["status"] == "cancelled"
    assert fire(platform, client, T0 + timedelta(minutes=100)) == []  # 11:10: 11:00 was consumed
    assert len(fire(platform, client, T0 + timedelta(minutes=150))) == 1  # 12:00
    assert sql(client, "SELECT count() AS n FROM summary") == [{"n": 3}]


def test_a_paused_schedule_does_not_fire_and_resuming_does_not_catch_up(client, platform, clock, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(copy_schedule=HOURLY)))
    ok(client.post("/v0/pipes/summarize/copy/pause"))
    assert fire(platform, client, T0 + timedelta(hours=3)) == []
    clock.now = T0 + timedelta(hours=3)
    pipe = ok(client.post("/v0/pipes/summarize/copy/resume"))
    assert pipe["schedule"]["next_run_at"] == "2031-03-01 13:00:00.000000"
    assert fire(platform, client, T0 + timedelta(hours=3, minutes=10)) == []
    assert len(fire(platform, client, T0 + timedelta(hours=3, minutes=30))) == 1


def test_changing_the_schedule_restarts_its_count(client, platform, clock, summary):
    pipe = ok(client.post("/v0/pipes", json=copy_pipe(copy_schedule=HOURLY)))
    node = pipe["nodes"][0]["id"]
    clock.now = T0 + timedelta(minutes=20)
    out = ok(client.put(f"/v0/pipes/{pipe['id']}/nodes/{node}/copy", data={"schedule_cron": "30 * * * *"}))
    assert out["schedule"]["next_run_at"] == "2031-03-01 10:30:00.000000"
    out = ok(client.put(f"/v0/pipes/{pipe['id']}/nodes/{node}/copy", data={"schedule_cron": "@on-demand"}))
    assert out["schedule"]["status"] == "on-demand"
    assert fire(platform, client, T0 + timedelta(hours=2)) == []


# -- restart ------------------------------------------------------------------------------------


def _open(config, engine, now):
    from tody.services.platform import Platform

    p = Platform.open(config, engine=engine)
    p.copies.clock = Clock(now)
    return p


def _close(p) -> None:
    """Everything Platform.close does but closing the engine (one per test process)."""
    p.scheduler.close()
    p.events.close()
    p.jobs.close()
    p.stats.close()
    p.catalog.close()
    p.lock.release()


def _seed(c) -> dict:
    """A source with one row, the summary target, and an hourly copy pipe between them."""
    schema = "`id` UInt64, `event` String, `value` Float64"
    ok(c.post("/v0/datasources", data={"name": "events", "schema": schema}))
    ok(
        c.post(
            "/v0/events",
            params={"name": "events", "wait": "true"},
            content=b'{"id":1,"event":"a","value":2}\n',
        )
    )
    ok(c.post("/v0/datasources", data={"name": "summary", "schema": SUMMARY, "engine_sorting_key": "event"}))
    return ok(c.post("/v0/pipes", json=copy_pipe(copy_schedule=HOURLY)))


def test_schedules_survive_a_restart(platform, engine, tmp_path):
    from tody.server.app import create_app

    config = dataclasses.replace(platform.config, data_dir=str(tmp_path / "data"))
    first = _open(config, engine, T0)
    try:
        workspace = first.catalog.workspaces()[0]
        token = first.workspaces.admin_token(workspace)
        with TestClient(create_app(first), headers={"Authorization": f"Bearer {token}"}) as c:
            _seed(c)
            ok(c.post("/v0/pipes", json=copy_pipe("paused_one", copy_schedule=HOURLY)))
            ok(c.post("/v0/pipes/paused_one/copy/pause"))
            [job] = first.scheduler.tick(T0 + timedelta(minutes=30))
            assert wait_job(c, job.id)["status"] == "done"
    finally:
        _close(first)

    second = _open(config, engine, T0 + timedelta(minutes=40))
    try:
        with TestClient(create_app(second), headers={"Authorization": f"Bearer {token}"}) as c:
            pipe = ok(c.get("/v0/pipes/summarize"))
            assert pipe["schedule"]["last_run_at"] == "2031-03-01 10:00:00.000000"
            assert ok(c.get("/v0/pipes/paused_one"))["schedule"]["status"] == "paused"
            assert second.scheduler.tick(T0 + timedelta(minutes=40)) == []  # 10:10: 10:00 already ran
            [job] = second.scheduler.tick(T0 + timedelta(minutes=95))  # 11:05; the paused pipe stays put
            assert job.pipe_id == pipe["id"] and wait_job(c, job.id)["status"] == "done"
            assert sql(c, "SELECT count() AS n FROM summary") == [{"n": 2}]
    finally:
        _close(second)


def test_a_copy_running_when_the_server_died_ends_as_error_and_the_next_runs(platform, engine, tmp_path):
    from tody.catalog.store import JobRecord, utcnow
    from tody.server.app import create_app

    config = dataclasses.replace(platform.config, data_dir=str(tmp_path / "data"))
    first = _open(config, engine, T0)
    try:
        workspace = first.catalog.workspaces()[0]
        token = first.workspaces.admin_token(workspace)
        with TestClient(create_app(first), headers={"Authorization": f"Bearer {token}"}) as c:
            pipe = _seed(c)
        now = utcnow()
        # What a crash in the middle of a copy leaves behind: its job still marked working.
        first.catalog.add_job(
            JobRecord(
                "crashed-copy",
                workspace.id,
                "copy",
                "working",
                None,
                pipe["id"],
                0.5,
                {},
                {},
                None,
                now,
                now,
                now,
            )
        )
    finally:
        _close(first)

    second = _open(config, engine, T0 + timedelta(minutes=30))
    try:
        with TestClient(create_app(second), headers={"Authorization": f"Bearer {token}"}) as c:
            crashed = ok(c.get("/v0/jobs/crashed-copy"))
            assert crashed["status"] == "error" and crashed["error"]
            [job] = second.scheduler.tick(T0 + timedelta(minutes=65))  # not blocked by the dead run
            assert wait_job(c, job.id)["status"] == "done"
            assert sql(c, "SELECT count() AS n FROM summary") == [{"n": 1}]
    finally:
        _close(second)
