"""Small helpers the HTTP API tests share: checked responses, SQL rows, and waiting for jobs and logs."""

from __future__ import annotations

import time


def ok(res):
    """The JSON of a successful response (None when empty); a failure shows the body."""
    assert res.status_code < 300, res.text
    return res.json() if res.content else None


def sql(client, q):
    return ok(client.get("/v0/sql", params={"q": q}))["data"]


def poll(fn, until, timeout=20.0):
    """fn() until until(value) holds or `timeout` seconds pass; the last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not until(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = fn()
    return value


def wait_job(client, job_id, timeout=30):
    """The job once it has ended (done, error or cancelled)."""
    job = poll(
        lambda: ok(client.get(f"/v0/jobs/{job_id}")),
        lambda j: j["status"] in ("done", "error", "cancelled"),
        timeout,
    )
    if job["status"] not in ("done", "error", "cancelled"):
        raise AssertionError(f"job {job_id} did not finish")
    return job
