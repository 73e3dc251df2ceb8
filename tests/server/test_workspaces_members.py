"""Users, workspaces created by users, members and roles, and the personal tokens that follow roles."""

from __future__ import annotations

import uuid

import pytest
from api_helpers import ok
from starlette.testclient import TestClient


@pytest.fixture
def org_admin(platform, bearer):
    """The first user (made at first start): admin of the organization."""
    user = platform.catalog.users()[0]
    return bearer(platform.users.token_value(user))


def new_user(org_admin, bearer):
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    body = ok(org_admin.post("/v0/users", json={"email": email, "password": "correct horse"}))
    assert body["email"] == email and body["token"].startswith("p.")
    return email, bearer(body["token"])


def new_workspace(user_client):
    name = "ws_" + uuid.uuid4().hex[:10]
    return ok(user_client.post("/v0/workspaces", params={"name": name}))


def test_a_user_creates_a_workspace_and_is_its_admin(org_admin, bearer):
    email, alice = new_user(org_admin, bearer)
    ws = new_workspace(alice)
    own = bearer(ws["token"])
    me = ok(own.get("/v0/workspace"))
    assert me["id"] == ws["id"] and me["role"] == "admin" and me["user_email"] == email
    listed = ok(alice.get("/v0/user/workspaces/"))["workspaces"]
    assert [(w["name"], w["role"], w["token"]) for w in listed] == [(ws["name"], "admin", ws["token"])]
    again = ok(alice.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))
    assert again["token"] == ws["token"]
    # the user token itself reads nothing of the workspace
    res = alice.get("/v0/datasources")
    assert res.status_code == 403 and "user token" in res.json()["error"]


def test_roles_decide_what_the_personal_token_may_do(org_admin, bearer):
    _, alice = new_user(org_admin, bearer)
    bob_email, bob = new_user(org_admin, bearer)
    ws = new_workspace(alice)
    admin = bearer(ws["token"])
    ok(admin.post("/v0/datasources", data={"name": "events", "schema": "`id` UInt64"}))
    change = f"/v0/workspaces/{ws['id']}/users/"
    assert bob.get(f"/v0/workspaces/{ws['id']}").status_code == 404  # not a member: not even its existence
    users = ok(alice.put(change, params={"operation": "add", "users": bob_email, "role": "viewer"}))["users"]
    assert {u["email"]: u["role"] for u in users}[bob_email] == "viewer"
    token = ok(bob.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"]
    personal = bearer(token)
    # viewer: reads, queries; nothing else
    assert personal.get("/v0/sql", params={"q": "SELECT count() FROM events"}).status_code == 200
    assert personal.post("/v0/datasources", data={"name": "x", "schema": "`a` Int8"}).status_code == 403
    assert personal.post("/v0/events?name=events", content=b'{"id": 1}\n').status_code == 403
    # guest: works with data, but no tokens, members or settings
    ok(alice.put(change, params={"operation": "change_role", "users": bob_email, "new_role": "guest"}))
    ok(personal.post("/v0/datasources", data={"name": "guest_ds", "schema": "`a` Int8"}))
    assert personal.post("/v0/events?name=events&wait=true", content=b'{"id": 1}\n').status_code == 200
    assert personal.delete("/v0/datasources/guest_ds").status_code == 204
    assert personal.get("/v0/tokens").status_code == 403
    assert personal.put("/v0/workspace/limits", params={"token_rps": "1"}).status_code == 403
    assert (
        bob.put(change, params={"operation": "add", "users": bob_email, "role": "admin"}).status_code == 403
    )
    # removed: the personal token stops at once
    ok(alice.put(change, params={"operation": "remove", "users": bob_email}))
    assert personal.get("/v0/workspace").status_code == 403
    assert bob.get(f"/v0/workspaces/{ws['id']}").status_code == 404


def test_the_last_admin_stays(org_admin, bearer):
    email, alice = new_user(org_admin, bearer)
    ws = new_workspace(alice)
    res = alice.put(f"/v0/workspaces/{ws['id']}/users/", params={"operation": "remove", "users": email})
    assert res.status_code == 409 and "last admin" in res.json()["error"]


def test_users_are_made_by_org_admins_only(org_admin, bearer, app):
    _, alice = new_user(org_admin, bearer)
    res = alice.post("/v0/users", json={"email": "x@example.com", "password": "long enough"})
    assert res.status_code == 403 and "organization admin" in res.json()["error"]
    with TestClient(app) as anonymous:
        res = anonymous.post("/v0/users", json={"email": "x@example.com", "password": "long enough"})
    assert res.status_code == 403 and "Sign-up is off" in res.json()["error"]
    for body, says in (
        ({"email": "not-an-email", "password": "long enough"}, "not an email"),
        ({"email": "y@example.com", "password": "short"}, "password"),
    ):
        res = org_admin.post("/v0/users", json=body)
        assert res.status_code == 400 and says in res.json()["error"]


def test_org_admins_act_as_admin_everywhere_in_the_org(org_admin, bearer, platform):
    _, alice = new_user(org_admin, bearer)
    ws = new_workspace(alice)
    token = ok(org_admin.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"]
    assert ok(bearer(token).get("/v0/workspace"))["role"] == "admin"
    org = platform.catalog.organizations()[0]
    names = [w["name"] for w in ok(org_admin.get(f"/v0/organizations/{org.id}/workspaces"))["workspaces"]]
    assert ws["name"] in names
    assert alice.get(f"/v0/organizations/{org.id}").status_code == 404


def test_deleting_a_workspace_removes_its_data_and_tokens(org_admin, bearer, platform):
    _, alice = new_user(org_admin, bearer)
    ws = new_workspace(alice)
    admin = bearer(ws["token"])
    ok(admin.post("/v0/datasources", data={"name": "events", "schema": "`id` UInt64"}))
    database = platform.catalog.workspace(ws["id"]).database
    assert alice.delete(f"/v0/workspaces/{ws['id']}").status_code == 204
    assert admin.get("/v0/workspace").status_code == 403
    assert platform.catalog.workspace(ws["id"]) is None
    found = platform.engine.execute(f"SELECT count() FROM system.databases WHERE name = '{database}'", "TSV")
    assert found.data.strip() == b"0"


def test_org_admins_manage_only_their_organizations_users(org_admin, bearer, platform):
    email, alice = new_user(org_admin, bearer)
    ws = new_workspace(alice)  # alice now belongs to the default organization
    other_org = platform.workspaces.create_organization("org_" + uuid.uuid4().hex[:8])
    other_email, other_admin = new_user(org_admin, bearer)
    platform.catalog.set_org_admin(other_org.id, platform.catalog.user_by_email(other_email).id, True)
    listed = [u["email"] for u in ok(other_admin.get("/v0/users"))["users"]]
    assert email not in listed
    assert other_admin.delete(f"/v0/users/{email}").status_code == 404
    res = org_admin.delete(f"/v0/users/{email}")  # alice is the only admin of her workspace
    assert res.status_code == 409 and "last admin" in res.json()["error"]
    assert alice.get(f"/v0/workspaces/{ws['id']}").status_code == 200
