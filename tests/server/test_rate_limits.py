"""Request rate limits per token, per JWT (`limits.rps`) and per endpoint, set per workspace."""

from __future__ import annotations

import time

import jwt
import pytest
from api_helpers import ok
from starlette.testclient import TestClient

from tody.services.tokens import Scope

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def endpoint(client):
    ok(client.post("/v0/pipes", data={"name": "ping", "sql": "SELECT 1 AS one"}))
    ok(client.post("/v0/pipes/ping/nodes/ping_0/endpoint"))
    return "/v0/pipes/ping.json"


def burst(c, path, n):
    return [c.get(path) for _ in range(n)]


def assert_headers(res, limit):
    present = [h for h in HEADERS if h in res.headers]
    assert present == list(HEADERS), f"all or none: {dict(res.headers)}"
    assert res.headers["X-RateLimit-Limit"] == str(limit)
    assert int(res.headers["X-RateLimit-Reset"]) >= 1


def test_no_limit_no_headers(client, endpoint):
    res = client.get(endpoint)
    assert res.status_code == 200 and not any(h in res.headers for h in (*HEADERS, "Retry-After"))


def test_workspace_token_limit(client, endpoint, app, platform, workspace):
    limits = ok(client.put("/v0/workspace/limits", params={"token_rps": "3"}))
    assert limits["token_rps"] == 3
    _, value = platform.tokens.create(workspace, "limited", [Scope.parse("PIPES:READ:ping")])
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        answers = burst(c, endpoint, 5)
    assert [r.status_code for r in answers][:3] == [200, 200, 200] and answers[-1].status_code == 429
    for res in answers:
        assert_headers(res, 3)
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1 and "Too many requests" in refused.json()["error"]
    assert "limited" in refused.json()["error"]
    # another token of the workspace has its own budget; 0 turns the limit off
    ok(client.put("/v0/workspace/limits", params={"token_rps": "0"}))
    assert all(r.status_code == 200 for r in burst(client, endpoint, 5))


def test_endpoint_limit_and_per_endpoint_override(client, endpoint):
    ok(client.post("/v0/pipes", data={"name": "pong", "sql": "SELECT 2 AS two"}))
    ok(client.post("/v0/pipes/pong/nodes/pong_0/endpoint"))
    limits = ok(client.put("/v0/workspace/limits", params={"endpoint_rps": "2", "endpoint_rps.pong": "4"}))
    assert limits["endpoint_rps"] == 2 and limits["endpoints"] == {"pong": 4}
    assert [r.status_code for r in burst(client, endpoint, 3)] == [200, 200, 429]
    pong = burst(client, "/v0/pipes/pong.json", 5)
    assert [r.status_code for r in pong] == [200, 200, 200, 200, 429]
    assert_headers(pong[0], 4)
    # other routes are not endpoint calls
    assert client.get("/v0/pipes").status_code == 200
    ok(client.put("/v0/workspace/limits", params={"endpoint_rps": "", "endpoint_rps.pong": ""}))
    assert ok(client.get("/v0/workspace/limits")) == {"token_rps": 0, "endpoint_rps": 0, "endpoints": {}}


def test_the_tightest_limit_is_reported(client, endpoint):
    ok(client.put("/v0/workspace/limits", params={"token_rps": "10", "endpoint_rps": "3"}))
    res = client.get(endpoint)
    assert_headers(res, 3)
    res = client.get("/v0/pipes")
    assert_headers(res, 10)


def test_jwt_rps(app, endpoint, workspace, workspace_token):
    claims = {
        "workspace_id": workspace.id,
        "name": "tenant",
        "exp": int(time.time()) + 60,
        "scopes": [{"type": "PIPES:READ", "resource": "ping"}],
        "limits": {"rps": 2},
    }
    value = jwt.encode(claims, workspace_token, algorithm="HS256")
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        answers = burst(c, endpoint, 3)
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert_headers(answers[0], 2)
    assert "Retry-After" in answers[2].headers


@pytest.mark.parametrize(
    "params, says",
    [
        ({"token_rps": "fast"}, "whole number"),
        ({"token_rps": "-1"}, "negative"),
        ({"endpoint_rps.nope": "3"}, "no pipe 'nope'"),
        ({"token_rpx": "3"}, None),
    ],
)
def test_bad_limits_are_400(client, params, says):
    res = client.put("/v0/workspace/limits", params=params)
    if says is None:  # unknown parameters are ignored, as on every route
        assert res.status_code == 200
        return
    assert res.status_code == 400 and says in res.json()["error"]


def test_only_an_admin_sets_limits(app, platform, workspace):
    _, value = platform.tokens.create(
        workspace, "creator", [Scope.parse("PIPES:CREATE"), Scope.parse("TOKENS")]
    )
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        res = c.put("/v0/workspace/limits", params={"token_rps": "1000"})
    assert res.status_code == 403 and "ADMIN" in res.json()["error"]
