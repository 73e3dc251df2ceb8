"""Tinybird's own clients against a real `tody serve`: the tb CLI 6.5.5, verdin and the Python SDK.

They live in their own virtualenv (`.venv-compat`, made by `make test` / `make compat-venv`), never
in tody's: they are what users already have, not something tody depends on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]
COMPAT_BIN = Path(os.environ.get("TODY_COMPAT_VENV", ROOT / ".venv-compat")) / "bin"
CLIENT_ENV = {"TB_CLI_TELEMETRY_OPTOUT": "1", "TB_VERSION_WARNING": "0"}


@pytest.fixture(scope="session")
def compat_bin() -> Path:
    if not (COMPAT_BIN / "tb").exists():
        pytest.fail(f"{COMPAT_BIN} has no tb: run `make compat-venv` (make test does it)", pytrace=False)
    return COMPAT_BIN


@pytest.fixture(scope="module")
def compat_server(tmp_path_factory):
    """A real `tody serve` on a free port with its own data directory: (url, admin token)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "p.compat-" + uuid.uuid4().hex
    env = {
        **os.environ,
        "TODY_DATA_DIR": str(tmp_path_factory.mktemp("compat-data")),
        "TODY_ADMIN_TOKEN": token,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tody", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"tody serve exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("tody serve did not become ready")
        time.sleep(0.1)
    yield url, token
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
