"""`tody serve` as a real process: first start, restart, the data-directory lock, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow

TOKEN = "p.test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir, port=None, host="127.0.0.1", token=TOKEN):
        self.port = port or free_port()
        self.url = f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{self.port}"
        env = {**os.environ, "TODY_DATA_DIR": str(data_dir), "TODY_ADMIN_TOKEN": token}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tody", "serve", "--host", host, "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready")

    def get(self, path, **kw):
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kw)

    def post(self, path, **kw):
        return httpx.post(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kw)

    def stop(self, sig=signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, out


def test_first_start_restart_and_clean_shutdown(tmp_path):
    data = tmp_path / "data"
    server = Server(data).wait_ready()
    assert server.get("/v0/workspace").json()["name"] == "default_workspace"
    res = server.post("/v0/datasources", data={"name": "events", "schema": "`a` UInt64, `b` String"})
    assert res.status_code == 200, res.text
    code, out = server.stop(signal.SIGTERM)
    assert code == 0, out
    assert TOKEN in out and "stopped cleanly" in out
    for name in ("catalog.db", "server.key", "engine"):
        assert (data / name).exists()

    again = Server(data, token="p.a-different-one-is-ignored-after-first-start").wait_ready()
    assert [d["name"] for d in again.get("/v0/datasources").json()["datasources"]] == ["events"]
    assert again.get("/v0/sql", params={"q": "SELECT count() c FROM events"}).json()["data"] == [{"c": 0}]
    code, out = again.stop(signal.SIGINT)
    assert code == 0, out


def test_second_server_on_same_data_dir_exits_at_once(tmp_path):
    first = Server(tmp_path / "data").wait_ready()
    try:
        started = time.monotonic()
        second = Server(tmp_path / "data")
        out, _ = second.proc.communicate(timeout=30)
        assert second.proc.returncode != 0
        assert "already using the data directory" in out
        assert time.monotonic() - started < 15
        assert first.get("/v0/workspace").status_code == 200
    finally:
        code, out = first.stop()
    assert code == 0, out


def test_token_discovery_is_off_when_not_loopback(tmp_path):
    server = Server(tmp_path / "data", host="0.0.0.0").wait_ready()
    try:
        assert httpx.get(server.url + "/tokens").status_code == 404
    finally:
        server.stop()
