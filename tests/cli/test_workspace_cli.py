"""`tody user …` and `tody workspace ls|create|use|rm|members …` against a real HTTP server, as users."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from cli_helpers import PASSWORD, ok, run
from click.testing import CliRunner

from tody.cli.main import cli


@pytest.fixture
def root_token(platform):
    """The first user's user token: admin of the default organization."""
    return platform.users.token_value(platform.catalog.users()[0])


@pytest.fixture
def new_user(live_server, root_token):
    """`tody user create` as the organization admin → (email, user token)."""

    def make():
        email = f"u{uuid.uuid4().hex[:8]}@example.com"
        res = ok(run(live_server, "user", "create", email, "--password", PASSWORD, user_token=root_token))
        assert f"User {email} created" in res.stderr
        value = res.stdout.strip()
        assert value.startswith("p.") and "\n" not in value
        return email, value

    return make


def ws_name() -> str:
    return "ws_" + uuid.uuid4().hex[:10]


def whoami(live_server, token):
    res = httpx.get(f"{live_server}/v0/workspace", headers={"Authorization": f"Bearer {token}"})
    return res.status_code, res.json()


def test_workspace_and_members_lifecycle(live_server, root_token, new_user):
    alice, alice_token = new_user()
    bob, _ = new_user()
    name = ws_name()

    res = ok(run(live_server, "workspace", "create", name, user_token=alice_token))
    assert f"Workspace '{name}' created" in res.stderr and "you are its admin" in res.stderr
    ws_token = res.stdout.strip()
    status, me = whoami(live_server, ws_token)
    assert status == 200 and me["name"] == name and me["role"] == "admin" and me["user_email"] == alice

    res = ok(run(live_server, "workspace", "ls", "--format", "json", user_token=alice_token))
    listed = orjson.loads(res.stdout)["workspaces"]
    assert [(w["name"], w["role"], w["token"]) for w in listed] == [(name, "admin", ws_token)]
    res = ok(run(live_server, "workspace", "ls", user_token=alice_token, token=ws_token))
    line = next(line for line in res.stdout.splitlines() if name in line)
    assert "admin" in line and "*" in line  # the current one: the token given is its token

    member = ("workspace", "members")
    res = ok(
        run(live_server, *member, "add", bob, "--role", "viewer", "--workspace", name, user_token=alice_token)
    )
    assert f"Added {bob} as viewer" in res.output
    res = ok(run(live_server, *member, "ls", "--workspace", name, "--format", "json", user_token=alice_token))
    assert {u["email"]: u["role"] for u in orjson.loads(res.stdout)["users"]} == {
        alice: "admin",
        bob: "viewer",
    }

    # no --workspace: the token's workspace, with the workspace token (no user token)
    res = ok(run(live_server, *member, "set-role", bob, "guest", token=ws_token))
    assert f"{bob} now is guest" in res.output
    res = ok(run(live_server, *member, "ls", token=ws_token))
    assert any(bob in line and "guest" in line for line in res.stdout.splitlines())

    res = run(live_server, *member, "rm", bob, "--workspace", name, user_token=alice_token, input="n\n")
    assert res.exit_code == 1 and "Aborted" in res.output
    res = ok(run(live_server, *member, "ls", "--workspace", name, "--format", "json", user_token=alice_token))
    assert bob in {u["email"] for u in orjson.loads(res.stdout)["users"]}
    res = ok(run(live_server, *member, "rm", bob, "--workspace", name, "--yes", user_token=alice_token))
    assert f"Removed {bob}" in res.output
    res = ok(run(live_server, *member, "ls", "--workspace", name, "--format", "json", user_token=alice_token))
    assert [u["email"] for u in orjson.loads(res.stdout)["users"]] == [alice]

    res = run(live_server, "workspace", "rm", name, user_token=alice_token, input="n\n")
    assert res.exit_code == 1 and "Aborted" in res.output
    assert whoami(live_server, ws_token)[0] == 200
    res = ok(run(live_server, "workspace", "rm", name, user_token=alice_token, input="y\n"))
    assert f"Workspace '{name}' removed" in res.output
    assert whoami(live_server, ws_token)[0] == 403
    res = ok(run(live_server, "workspace", "ls", "--format", "json", user_token=alice_token))
    assert orjson.loads(res.stdout)["workspaces"] == []


def test_user_create_ls_rm(live_server, root_token, new_user):
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    res = run(live_server, "user", "create", email, user_token=root_token, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    assert "Password" in res.stderr and "Repeat" in res.stderr and PASSWORD not in res.output  # not echoed
    value = res.stdout.strip()
    assert value.startswith("p.") and "\n" not in value
    got = httpx.get(f"{live_server}/v0/user/workspaces/", headers={"Authorization": f"Bearer {value}"})
    assert got.status_code == 200 and got.json()["email"] == email

    res = ok(run(live_server, "user", "ls", "--format", "json", user_token=root_token))
    assert email in {u["email"] for u in orjson.loads(res.stdout)["users"]}
    res = ok(run(live_server, "user", "ls", user_token=root_token))
    assert email in res.stdout and "admin@localhost" in res.stdout

    res = run(live_server, "user", "rm", email, user_token=root_token, input="n\n")
    assert res.exit_code == 1 and "Aborted" in res.output
    res = ok(run(live_server, "user", "rm", email, user_token=root_token, input="y\n"))
    assert f"User {email} removed" in res.output
    got = httpx.get(f"{live_server}/v0/user/workspaces/", headers={"Authorization": f"Bearer {value}"})
    assert got.status_code == 403
    res = ok(run(live_server, "user", "ls", "--format", "json", user_token=root_token))
    assert email not in {u["email"] for u in orjson.loads(res.stdout)["users"]}


def test_workspace_use_writes_the_token_to_the_config(live_server, new_user, cli_config):
    _, alice_token = new_user()
    name = ws_name()
    ws_token = ok(run(live_server, "workspace", "create", name, user_token=alice_token)).stdout.strip()
    assert not cli_config.exists()

    res = ok(run(live_server, "workspace", "use", name, user_token=alice_token))
    assert (
        f"Using workspace '{name}' (admin) on {live_server}" in res.output and str(cli_config) in res.output
    )
    saved = orjson.loads(cli_config.read_bytes())
    assert saved["host"] == live_server
    entry = saved["hosts"][live_server]
    assert entry["token"] == ws_token and entry["user_token"] == alice_token and entry["workspace"] == name
    assert cli_config.stat().st_mode & 0o777 == 0o600  # it holds secrets

    # later commands take host, token and user token from the config
    invoke = CliRunner().invoke
    res = invoke(cli, ["datasource", "ls", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0 and orjson.loads(res.stdout) == {"datasources": []}, res.output
    res = invoke(cli, ["workspace", "ls"], catch_exceptions=False)
    assert res.exit_code == 0 and any(name in line and "*" in line for line in res.stdout.splitlines())
    res = invoke(cli, ["workspace", "members", "ls", "--format", "json"], catch_exceptions=False)
    assert [u["role"] for u in orjson.loads(res.stdout)["users"]] == ["admin"]

    # removing the current workspace forgets its token, not the user token
    res = invoke(cli, ["workspace", "rm", name, "--yes"], catch_exceptions=False)
    assert res.exit_code == 0 and "It was the current workspace" in res.stderr, res.output
    entry = orjson.loads(cli_config.read_bytes())["hosts"][live_server]
    assert "token" not in entry and "workspace" not in entry and entry["user_token"] == alice_token


def test_errors_exit_non_zero_with_the_server_message(live_server, root_token, new_user, workspace_token):
    alice, alice_token = new_user()
    name = ws_name()
    ok(run(live_server, "workspace", "create", name, user_token=alice_token))

    res = run(live_server, "workspace", "create", ws_name())
    assert res.exit_code == 2 and "No user token" in res.output
    res = run(live_server, "workspace", "create", ws_name(), user_token=workspace_token)
    assert res.exit_code == 1 and "needs a user token" in res.output and "HTTP 403" in res.output
    res = run(live_server, "workspace", "create", name, user_token=alice_token)
    assert (
        res.exit_code == 1 and f"Workspace '{name}' already exists" in res.output and "HTTP 409" in res.output
    )
    res = run(live_server, "workspace", "use", "ws_nope_" + uuid.uuid4().hex[:6], user_token=alice_token)
    assert res.exit_code == 1 and "not found" in res.output and "HTTP 404" in res.output

    res = run(live_server, "user", "create", alice, "--password", PASSWORD, user_token=root_token)
    assert res.exit_code == 1 and "already exists" in res.output
    res = run(live_server, "user", "create", "x@example.com", "--password", "short", user_token=root_token)
    assert res.exit_code == 1 and "password" in res.output and "HTTP 400" in res.output
    res = run(live_server, "user", "ls", user_token=alice_token)
    assert res.exit_code == 1 and "Only an organization admin" in res.output
    res = run(live_server, "user", "rm", "nobody@example.com", "--yes", user_token=root_token)
    assert res.exit_code == 1 and "not found" in res.output

    member = ("workspace", "members")
    res = run(live_server, *member, "add", "nobody@example.com", "--workspace", name, user_token=alice_token)
    assert res.exit_code == 1 and "User 'nobody@example.com' not found" in res.output
    res = run(live_server, *member, "rm", alice, "--yes", "--workspace", name, user_token=alice_token)
    assert res.exit_code == 1 and "last admin" in res.output and "HTTP 409" in res.output
    res = run(live_server, *member, "set-role", alice, "owner", "--workspace", name, user_token=alice_token)
    assert res.exit_code == 2 and "owner" in res.output
    res = run(live_server, "workspace", "rm", "ws_nope", "--yes", user_token=alice_token)
    assert res.exit_code == 1 and "HTTP 404" in res.output


def test_config_errors_are_clear(live_server, cli_config):
    cli_config.parent.mkdir(parents=True)
    cli_config.write_text("{not json")
    res = CliRunner().invoke(cli, ["workspace", "ls"])
    assert res.exit_code == 1 and "not valid JSON" in res.output and str(cli_config) in res.output


def test_every_command_has_help():
    runner = CliRunner()
    for args in (
        ["user"],
        ["user", "create"],
        ["user", "ls"],
        ["user", "rm"],
        ["workspace"],
        ["workspace", "ls"],
        ["workspace", "create"],
        ["workspace", "use"],
        ["workspace", "rm"],
        ["workspace", "members"],
        ["workspace", "members", "ls"],
        ["workspace", "members", "add"],
        ["workspace", "members", "rm"],
        ["workspace", "members", "set-role"],
        ["workspace", "limits"],
        ["org"],
        ["org", "show"],
        ["org", "workspaces"],
        ["org", "admins"],
        ["org", "admins", "ls"],
        ["org", "admins", "add"],
        ["org", "admins", "rm"],
        ["datasource", "share"],
        ["datasource", "unshare"],
    ):
        res = runner.invoke(cli, [*args, "--help"])
        assert res.exit_code == 0 and "Usage: " in res.output and len(res.output.splitlines()) > 4, args
