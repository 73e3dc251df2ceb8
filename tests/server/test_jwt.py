"""JWTs: signed with the workspace admin token, scopes with fixed params and filters, 403 with reasons."""

from __future__ import annotations

import time

import jwt
import pytest
from api_helpers import ok
from starlette.testclient import TestClient

TENANT_PIPE = """%
SELECT event, count() AS c FROM events
WHERE event = {{String(event, 'click')}}
GROUP BY event"""


@pytest.fixture
def tenants(client, make_events):
    """events with 30 rows (10 per click/view/buy) and an endpoint filtered by an `event` param."""
    make_events(rows=30)
    ok(client.post("/v0/pipes", data={"name": "by_event", "sql": TENANT_PIPE}))
    ok(client.post("/v0/pipes/by_event/nodes/by_event_0/endpoint"))
    return "by_event"


@pytest.fixture
def call(app):
    def make(value, path, **params):
        with TestClient(app) as c:
            return c.get(path, params=params, headers={"Authorization": f"Bearer {value}"})

    return make


def sign(workspace, key, scopes, **claims):
    body = {"workspace_id": workspace.id, "name": "tenant", "exp": int(time.time()) + 600, "scopes": scopes}
    return jwt.encode({**body, **claims}, key, algorithm="HS256")


def pipe_scope(**extra):
    return [{"type": "PIPES:READ", "resource": "by_event", **extra}]


def test_self_signed_jwt_with_fixed_params_overrides_the_request(tenants, call, workspace, workspace_token):
    value = sign(workspace, workspace_token, pipe_scope(fixed_params={"event": "view"}))
    res = call(value, "/v0/pipes/by_event.json", event="buy")
    assert ok(res)["data"] == [{"event": "view", "c": 10}]
    # the tenant cannot reach around its fixed params through q= or another route
    res = call(value, "/v0/pipes/by_event.json", q="SELECT * FROM by_event", event="buy")
    assert ok(res)["data"] == [{"event": "view", "c": 10}]
    res = call(value, "/v0/sql", q="SELECT * FROM by_event", event="buy")
    assert ok(res)["data"] == [{"event": "view", "c": 10}]


def test_server_signed_jwt(client, tenants, call):
    expires = int(time.time()) + 600
    res = client.post(
        "/v0/tokens",
        params={"name": "tenant_7", "expiration_time": expires},
        json={"scopes": pipe_scope(fixed_params={"event": "buy"}), "limits": {"rps": 50}},
    )
    value = ok(res)["token"]
    claims = jwt.decode(value, options={"verify_signature": False})
    assert claims["name"] == "tenant_7" and claims["exp"] == expires and claims["limits"] == {"rps": 50}
    assert ok(call(value, "/v0/pipes/by_event.json"))["data"] == [{"event": "buy", "c": 10}]


def test_jwt_row_filter_applies_to_every_read(tenants, call, workspace, workspace_token):
    scopes = [
        *pipe_scope(),
        {"type": "DATASOURCES:READ", "resource": "events", "filter": "event = 'click'"},
    ]
    value = sign(workspace, workspace_token, scopes)
    assert ok(call(value, "/v0/pipes/by_event.json", event="view"))["data"] == []
    assert ok(call(value, "/v0/pipes/by_event.json", event="click"))["data"] == [{"event": "click", "c": 10}]
    res = call(value, "/v0/sql", q="SELECT event, count() c FROM events GROUP BY event")
    assert ok(res)["data"] == [{"event": "click", "c": 10}]


@pytest.mark.parametrize(
    "case, says",
    [
        ("expired", "expired"),
        ("wrong key", "signature does not match"),
        ("unknown workspace", "does not exist on this server"),
        ("no workspace", "'workspace_id' claim is missing"),
        ("no exp", "'exp' claim is missing"),
        ("alg none", "HS256"),
        ("bad scope type", "not allowed"),
        ("garbage", "not a readable JWT"),
    ],
)
def test_bad_jwts_get_403_with_the_reason(tenants, call, workspace, workspace_token, case, says):
    scopes = pipe_scope()
    value = {
        "expired": lambda: sign(workspace, workspace_token, scopes, exp=int(time.time()) - 5),
        "wrong key": lambda: sign(workspace, "p.not-the-admin-token-at-all-but-long-enough", scopes),
        "unknown workspace": lambda: sign(workspace, workspace_token, scopes, workspace_id="nope"),
        "no workspace": lambda: jwt.encode({"name": "x", "exp": 2**31, "scopes": scopes}, workspace_token),
        "no exp": lambda: jwt.encode(
            {"workspace_id": workspace.id, "name": "x", "scopes": scopes}, workspace_token, algorithm="HS256"
        ),
        "alg none": lambda: jwt.encode(
            {"workspace_id": workspace.id, "name": "x", "exp": 2**31, "scopes": scopes},
            None,
            algorithm="none",
        ),
        "bad scope type": lambda: sign(
            workspace, workspace_token, [{"type": "ADMIN", "resource": "by_event"}]
        ),
        "garbage": lambda: "eyJhbGciOi.not.base64",
    }[case]()
    res = call(value, "/v0/pipes/by_event.json")
    assert res.status_code == 403 and says in res.json()["error"], res.text


def test_jwt_from_another_workspace_is_refused(tenants, call, platform, workspace):
    org = platform.catalog.organizations()[0]
    other, other_token = platform.workspaces.create(org.id, "jwt_other_" + workspace.id[:8])
    value = sign(workspace, other_token, pipe_scope())  # claims our workspace, signed with theirs
    assert call(value, "/v0/pipes/by_event.json").status_code == 403
    value = sign(other, other_token, pipe_scope())  # theirs: our pipe is not there
    assert call(value, "/v0/pipes/by_event.json").status_code in (403, 404)


def test_refreshing_the_admin_token_revokes_every_jwt(client, tenants, call, workspace, workspace_token):
    value = sign(workspace, workspace_token, pipe_scope())
    assert call(value, "/v0/pipes/by_event.json").status_code == 200
    new_admin = ok(client.post("/v0/tokens/Workspace admin token/refresh"))["token"]
    assert call(value, "/v0/pipes/by_event.json").status_code == 403
    assert call(sign(workspace, new_admin, pipe_scope()), "/v0/pipes/by_event.json").status_code == 200


def test_a_jwt_reads_only_what_its_scopes_name(app, tenants, call, workspace, workspace_token, client):
    ok(client.post("/v0/pipes", data={"name": "other", "sql": "SELECT 1 AS x"}))
    ok(client.post("/v0/pipes/other/nodes/other_0/endpoint"))
    value = sign(workspace, workspace_token, pipe_scope())
    assert call(value, "/v0/pipes/other.json").status_code == 403
    assert call(value, "/v0/sql", q="SELECT count() FROM events").status_code == 403
    assert call(value, "/v0/tokens").status_code == 403
    with TestClient(app) as c:
        res = c.post(
            "/v0/events?name=events", content=b'{"id": 1}\n', headers={"Authorization": f"Bearer {value}"}
        )
    assert res.status_code == 403


@pytest.mark.parametrize(
    "body, says",
    [
        ({"scopes": []}, "at least one scope"),
        ({"scopes": [{"type": "PIPES:READ"}]}, "needs a 'resource'"),
        ({"scopes": [{"type": "PIPES:READ", "resource": "nope"}]}, "does not exist"),
        ({"scopes": [{"type": "DATASOURCES:APPEND", "resource": "events"}]}, "not allowed"),
        ({"scopes": [{"type": "DATASOURCES:READ", "resource": "events", "filter": "sleep(3)"}]}, "not valid"),
        ({"scopes": pipe_scope(), "limits": {"rps": -1}}, "limits.rps"),
        ({"scopes": [{"type": "PIPES:READ", "resource": "by_event", "fixed_params": [1]}]}, "fixed_params"),
    ],
)
def test_bad_jwt_requests_are_400(client, tenants, body, says):
    res = client.post("/v0/tokens", params={"name": "t", "expiration_time": int(time.time()) + 60}, json=body)
    assert res.status_code == 400 and says in res.json()["error"], res.text


def test_jwt_expiration_must_be_in_the_future(client, tenants):
    res = client.post(
        "/v0/tokens",
        params={"name": "t", "expiration_time": int(time.time()) - 1},
        json={"scopes": pipe_scope()},
    )
    assert res.status_code == 400 and "future" in res.json()["error"]
