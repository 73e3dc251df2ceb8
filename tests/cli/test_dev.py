"""`tody dev` as a real process: serve a project, print its endpoint URLs, re-push an edited pipe, stop on
SIGINT with exit 0."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.slow

PIPE = """NODE top_node
SQL >
    SELECT path, hits FROM visits ORDER BY hits DESC

TYPE endpoint
"""


def _lines(proc) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    threading.Thread(target=read, daemon=True).start()
    return q


def _wait_for(q: queue.Queue, pattern: str, seen: list[str], timeout: float = 30.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError("tody dev exited:\n" + "".join(seen))
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(seen))


def _data(url: str) -> list[dict]:
    res = httpx.get(url, timeout=10)
    assert res.status_code == 200, res.text
    return res.json()["data"]


def test_dev_serves_pushes_watches_and_stops(tmp_path):
    project = tmp_path / "project"
    for folder in ("datasources", "pipes", "fixtures"):
        (project / folder).mkdir(parents=True)
    (project / "datasources" / "visits.datasource").write_text(
        "SCHEMA >\n    `path` String `json:$.path`,\n    `hits` UInt64 `json:$.hits`\n"
    )
    (project / "fixtures" / "visits.ndjson").write_text('{"path":"a","hits":1}\n{"path":"b","hits":5}\n')
    pipe = project / "pipes" / "top.pipe"
    pipe.write_text(PIPE)

    env = {k: v for k, v in os.environ.items() if not k.startswith("TODY_")}
    env["TODY_CONFIG"] = str(tmp_path / "cli-config.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tody", "dev", "--folder", str(project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        q = _lines(proc)
        url = _wait_for(q, r"top: (http://\S+/v0/pipes/top\.json\?token=\S+)", seen).group(1)
        assert _data(url) == [{"path": "b", "hits": 5}, {"path": "a", "hits": 1}]  # fixtures loaded
        _wait_for(q, r"Watching", seen)

        pipe.write_text(PIPE.replace("ORDER BY hits DESC", "ORDER BY hits ASC"))
        _wait_for(q, r"updated\s+pipe\s+top", seen, timeout=10)
        assert _data(url) == [{"path": "a", "hits": 1}, {"path": "b", "hits": 5}]
        assert any("changed  pipes/top.pipe" in line for line in seen)

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, "".join(seen)
        while (line := q.get(timeout=5)) is not None:
            seen.append(line)
        assert "Stopped." in "".join(seen)
        assert (project / ".tody-dev" / "catalog.db").exists()
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
