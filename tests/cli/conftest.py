"""CLI tests never read or write the user's own CLI config, nor take host or tokens from the environment or
from a `.tinyb` project config around the repository (each test starts in its own empty folder)."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(autouse=True)
def cli_config(tmp_path, monkeypatch):
    """The path of this test's own CLI config file (TODY_CONFIG; not created until a command writes it)."""
    path = tmp_path / "tody-cli" / "config.json"
    monkeypatch.setenv("TODY_CONFIG", str(path))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for name in ("TODY_HOST", "TODY_TOKEN", "TODY_USER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def api(live_server, workspace_token):
    """Calls to the server as the workspace admin, to set up what the CLI works on."""

    def call(method, path, **kwargs):
        res = httpx.request(
            method,
            f"{live_server}{path}",
            headers={"Authorization": f"Bearer {workspace_token}"},
            timeout=30,
            **kwargs,
        )
        assert res.status_code < 300, res.text
        return res.json() if res.content else None

    return call
