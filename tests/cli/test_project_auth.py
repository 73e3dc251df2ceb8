"""`tody auth` writes the project's .tinyb; every command then takes host and token from it, after flags
and TODY_HOST/TODY_TOKEN and before the CLI config."""

from __future__ import annotations

import os
import stat

import orjson
from click.testing import CliRunner
from project_sample import write_project

from tody.cli import config as cli_config
from tody.cli.client import Client
from tody.cli.main import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def test_auth_writes_tinyb_and_later_commands_use_it(
    live_server, workspace_token, workspace, tmp_path, monkeypatch
):
    root = write_project(tmp_path / "project")
    monkeypatch.chdir(root)
    res = run("auth", "--host", live_server, "--token", workspace_token)
    assert res.exit_code == 0, res.output
    assert f"workspace '{workspace.name}'" in res.output
    path = root / ".tinyb"
    config = orjson.loads(path.read_bytes())
    assert config["host"] == live_server and config["token"] == workspace_token
    assert config["id"] == workspace.id and config["name"] == workspace.name and config["scope"] == "admin"
    assert config["tokens"] == {live_server: workspace_token}
    assert path.read_text().startswith('{\n    "host"')  # as tb writes it: indent 4, sorted keys
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    # from a subfolder, with no flags: the nearest .tinyb gives host, token and the project folder
    monkeypatch.chdir(root / "endpoints")
    res = run("push")
    assert res.exit_code == 0, res.output
    assert "created       pipe       top_users" in res.output
    res = run("auth", "info")
    assert res.exit_code == 0, res.output
    assert live_server in res.output and workspace.name in res.output and str(path) in res.output
    assert workspace_token not in res.output
    res = run("diff")
    assert res.exit_code == 0, res.output


def test_auth_refuses_a_bad_token_and_writes_nothing(live_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run("auth", "--host", live_server, "--token", "p.not-a-token")
    assert res.exit_code == 1 and "Invalid token" in res.output
    assert not (tmp_path / ".tinyb").exists()


def test_auth_updates_the_nearest_tinyb_in_a_parent(live_server, workspace_token, tmp_path, monkeypatch):
    (tmp_path / ".tinyb").write_text('{"host": "http://old", "token": "old", "custom": 1}')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    res = run("auth", "--host", live_server, "--token", workspace_token)
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "sub" / ".tinyb").exists()
    config = orjson.loads((tmp_path / ".tinyb").read_bytes())
    assert config["host"] == live_server and config["token"] == workspace_token and config["custom"] == 1


def test_resolution_order_flags_env_tinyb_cli_config(tmp_path, monkeypatch):
    cli_config.remember("http://from-config", token="config-token")
    monkeypatch.chdir(tmp_path)
    assert (Client().host, Client().known_token) == ("http://from-config", "config-token")

    (tmp_path / ".tinyb").write_text(
        orjson.dumps({"host": "http://from-tinyb", "token": "tinyb-token"}).decode()
    )
    assert (Client().host, Client().known_token) == ("http://from-tinyb", "tinyb-token")
    # another host: the project's token is not sent there; the CLI config's for that host is
    assert Client("http://from-config").known_token == "config-token"
    assert Client("http://elsewhere").known_token is None

    monkeypatch.setenv("TODY_HOST", "http://from-env")
    monkeypatch.setenv("TODY_TOKEN", "env-token")
    assert (Client().host, Client().known_token) == ("http://from-env", "env-token")
    assert (Client("http://flag", "flag-token").host, Client("http://flag", "flag-token").known_token) == (
        "http://flag",
        "flag-token",
    )


def test_folder_option_uses_that_projects_tinyb(live_server, workspace_token, tmp_path, monkeypatch):
    root = write_project(tmp_path / "project")
    (root / ".tinyb").write_text(orjson.dumps({"host": live_server, "token": workspace_token}).decode())
    monkeypatch.chdir(tmp_path)  # no .tinyb here
    res = run("push", "--folder", str(root))
    assert res.exit_code == 0, res.output
    res = run("diff", "--folder", str(root))
    assert res.exit_code == 0, res.output
    res = run("pull", "--folder", str(root))
    assert res.exit_code == 0 and "written" not in res.output, res.output
