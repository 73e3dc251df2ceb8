"""`tody org …`, `tody datasource share|unshare` against a real HTTP server, and what `tody serve`
prints about the first user at first start."""

from __future__ import annotations

import signal
import uuid

import httpx
import orjson
import pytest
from cli_helpers import PASSWORD, ok, run


@pytest.fixture
def root(platform):
    """(email, user token) of the first user: admin of the default organization."""
    user = platform.catalog.users()[0]
    return user.email, platform.users.token_value(user)


@pytest.fixture
def alice(live_server, root):
    email = f"alice{uuid.uuid4().hex[:8]}@example.com"
    res = ok(run(live_server, "user", "create", email, "--password", PASSWORD, user_token=root[1]))
    return email, res.stdout.strip()


def create_workspace(live_server, user_token) -> tuple[str, str]:
    name = "ws_" + uuid.uuid4().hex[:10]
    return name, ok(run(live_server, "workspace", "create", name, user_token=user_token)).stdout.strip()


def call(live_server, token, method, path, **kwargs):
    return httpx.request(
        method, f"{live_server}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
    )


def count_in(live_server, token, table):
    return call(live_server, token, "GET", "/v0/sql", params={"q": f"SELECT count() AS c FROM {table}"})


def test_share_and_unshare_between_two_workspaces_of_a_user(live_server, alice):
    _, user_token = alice
    origin, origin_token = create_workspace(live_server, user_token)
    dest, dest_token = create_workspace(live_server, user_token)
    res = call(
        live_server, origin_token, "POST", "/v0/datasources", data={"name": "events", "schema": "`id` UInt64"}
    )
    assert res.status_code == 200, res.text
    body = b"".join(b'{"id": %d}\n' % i for i in range(5))
    res = call(
        live_server,
        origin_token,
        "POST",
        "/v0/events",
        params={"name": "events", "wait": "true"},
        content=body,
    )
    assert res.status_code == 200, res.text
    assert count_in(live_server, dest_token, f"{origin}.events").status_code == 400

    # with the user token: the origin is the token's workspace
    res = ok(
        run(live_server, "datasource", "share", "events", dest, token=origin_token, user_token=user_token)
    )
    assert f"read it there as {origin}.events" in res.output
    assert count_in(live_server, dest_token, f"{origin}.events").json()["data"] == [{"c": 5}]

    # a pipe of the destination reads it: unsharing is refused, unless forced
    sql = f"SELECT count() AS c FROM {origin}.events"
    res = call(live_server, dest_token, "POST", "/v0/pipes", data={"name": "reader", "sql": sql})
    assert res.status_code == 200, res.text
    res = run(live_server, "datasource", "unshare", "events", dest, token=origin_token)
    assert res.exit_code == 1 and "reader" in res.output and "HTTP 409" in res.output
    res = ok(run(live_server, "datasource", "unshare", "events", dest, "--force", token=origin_token))
    assert f"no longer shared with workspace '{dest}'" in res.output
    assert count_in(live_server, dest_token, f"{origin}.events").status_code == 400

    # with the workspace token alone (same organization)
    ok(run(live_server, "datasource", "share", "events", dest, token=origin_token))
    assert count_in(live_server, dest_token, f"{origin}.events").json()["data"] == [{"c": 5}]

    res = run(live_server, "datasource", "unshare", "events", "ws_nope", token=origin_token)
    assert res.exit_code == 1 and "Workspace 'ws_nope' not found" in res.output
    res = run(live_server, "datasource", "share", "missing", dest, token=origin_token)
    assert res.exit_code == 1 and "Data Source 'missing' not found" in res.output
    res = run(live_server, "datasource", "share", "events", origin, token=origin_token)
    assert res.exit_code == 1 and "its own workspace" in res.output and "HTTP 400" in res.output


def test_org_show_workspaces_and_admins(live_server, platform, root, alice):
    root_email, root_token = root
    org = platform.catalog.organizations()[0]
    name, _ = create_workspace(live_server, alice[1])

    res = ok(run(live_server, "org", "show", "--format", "json", user_token=root_token))
    shown = orjson.loads(res.stdout)
    assert shown["id"] == org.id and shown["name"] == org.name and shown["workspaces"] >= 1
    assert root_email in {a["email"] for a in shown["admins"]}
    res = ok(run(live_server, "org", "show", org.id, user_token=root_token))
    assert org.name in res.stdout and root_email in res.stdout

    res = ok(run(live_server, "org", "workspaces", "--format", "json", user_token=root_token))
    assert name in {w["name"] for w in orjson.loads(res.stdout)["workspaces"]}
    res = ok(run(live_server, "org", "workspaces", org.id, user_token=root_token))
    assert name in res.stdout

    # alice is no admin of it: the organization is not even found
    res = run(live_server, "org", "show", user_token=alice[1])
    assert res.exit_code == 1 and "You administer no organization" in res.output
    res = run(live_server, "org", "show", org.id, user_token=alice[1])
    assert res.exit_code == 1 and "HTTP 404" in res.output

    res = ok(run(live_server, "org", "admins", "add", alice[0], user_token=root_token))
    assert alice[0] in res.output and "now admins" in res.output
    res = ok(run(live_server, "org", "admins", "ls", "--format", "json", user_token=alice[1]))
    assert {root_email, alice[0]} <= {a["email"] for a in orjson.loads(res.stdout)["admins"]}

    res = run(live_server, "org", "admins", "rm", alice[0], user_token=root_token, input="n\n")
    assert res.exit_code == 1 and "Aborted" in res.output
    res = ok(run(live_server, "org", "admins", "rm", alice[0], "--yes", user_token=root_token))
    assert "no longer admins" in res.output
    assert run(live_server, "org", "show", org.id, user_token=alice[1]).exit_code == 1
    res = run(live_server, "org", "admins", "add", "nobody@example.com", user_token=root_token)
    assert res.exit_code == 1 and "not found" in res.output


@pytest.mark.slow
def test_serve_prints_the_first_user_at_first_start_only(tmp_path, monkeypatch):
    from test_serve import Server

    value = "p.test-user-token-" + uuid.uuid4().hex[:8]
    monkeypatch.setenv("TODY_ADMIN_USER_TOKEN", value)
    server = Server(tmp_path / "data").wait_ready()
    got = httpx.get(f"{server.url}/v0/user/workspaces/", headers={"Authorization": f"Bearer {value}"})
    assert got.status_code == 200 and got.json()["email"] == "admin@localhost"
    code, out = server.stop(signal.SIGTERM)
    assert code == 0, out
    assert f"first user admin@localhost: user token {value}" in out
    assert "first user admin@localhost: password " in out and "shown once" in out

    again = Server(tmp_path / "data").wait_ready()
    code, out = again.stop(signal.SIGINT)
    assert code == 0 and "first user" not in out, out
