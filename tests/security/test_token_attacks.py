"""Tokens used against the rules: refreshed and deleted values, forged and stretched JWTs, a TOKENS
token climbing to admin, another workspace's admin, a member token beyond its role. Each is a
data-driven `Case` refused with a clear 4xx while nothing changes (catalog, rows, engine, files).
Rate limits (429) are in tests/server/test_rate_limits.py: their windows do not fit a snapshot."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from hostile import Case, check_refused, params

from tody.services.tokens import Scope

EVENT = b'{"id": 77, "event": "x", "value": 1}'


def _jwt(world, key: str, **claims) -> str:
    body = {
        "workspace_id": world.a.id,
        "name": "tenant",
        "exp": int(time.time()) + 600,
        "scopes": [{"type": "PIPES:READ", "resource": "ep"}],
    }
    return jwt.encode({**body, **claims}, key, algorithm="HS256")


@pytest.fixture(scope="module")
def token_world(world):
    """Token values the cases below use, made (and refreshed, deleted, …) before any snapshot."""
    platform, a = world.platform, world.a
    admin_a, admin_b = world.tokens["admin_a"], world.tokens["admin_b"]
    suffix = uuid.uuid4().hex[:6]

    def static(label: str, *scopes: str) -> str:
        rec, value = platform.tokens.create(a, f"tok_{label}_{suffix}", [Scope.parse(s) for s in scopes])
        world.tokens[label] = value
        return rec.id

    refreshed = static("refreshed_old", "WORKSPACE:READ_ALL", "DATASOURCES:CREATE")
    world.names["A_TOKEN_ID"] = refreshed
    with world.client("admin_a") as c:
        assert c.post(f"/v0/tokens/{refreshed}/refresh").status_code == 200
    deleted = static("deleted", "WORKSPACE:READ_ALL")
    with world.client("admin_a") as c:
        assert c.delete(f"/v0/tokens/{deleted}").status_code == 204
    static("tokens_only", "TOKENS")
    world.tokens["jwt_wrong_key"] = _jwt(world, "p.a-key-that-is-not-the-admin-token-of-anyone")
    world.tokens["jwt_b_key"] = _jwt(world, admin_b)
    world.tokens["jwt_expired"] = _jwt(world, admin_a, exp=int(time.time()) - 10)
    world.tokens["jwt_admin_scope"] = _jwt(world, admin_a, scopes=[{"type": "ADMIN", "resource": "ep"}])
    world.tokens["jwt_none"] = jwt.encode(
        {"workspace_id": world.a.id, "name": "x", "exp": 2**31, "scopes": []}, None, algorithm="none"
    )
    world.tokens["jwt_fixed"] = _jwt(
        world, admin_a, scopes=[{"type": "PIPES:READ", "resource": "ep", "fixed_params": {"s": "view"}}]
    )
    # a member whose role is viewer, through its personal token
    user, _ = platform.users.create(f"viewer_{suffix}@example.com", "a long password")
    platform.members.add(a, user, "viewer")
    world.tokens["member_viewer"] = platform.members.personal_token(a, user)
    return world


CASES = [
    Case(
        "refreshed_value_reused", "GET", "/v0/datasources", 403, "refreshed or deleted", token="refreshed_old"
    ),
    Case(
        "refreshed_value_writes",
        "POST",
        "/v0/datasources",
        403,
        "refreshed or deleted",
        token="refreshed_old",
        data={"name": "hostile_ds", "schema": "a UInt8"},
    ),
    Case(
        "deleted_value_reused",
        "GET",
        "/v0/sql",
        403,
        "refreshed or deleted",
        token="deleted",
        params={"q": "SELECT 1"},
    ),
    Case("jwt_signed_with_another_key", "GET", "/v0/pipes/ep.json", 403, "signature", token="jwt_wrong_key"),
    Case("jwt_signed_with_b_admin_token", "GET", "/v0/pipes/ep.json", 403, "signature", token="jwt_b_key"),
    Case("jwt_expired", "GET", "/v0/pipes/ep.json", 403, "expired", token="jwt_expired"),
    Case("jwt_claims_admin", "GET", "/v0/tokens", 403, "not allowed", token="jwt_admin_scope"),
    Case("jwt_alg_none", "GET", "/v0/pipes/ep.json", 403, "HS256", token="jwt_none"),
    Case(
        "jwt_reads_sql",
        "GET",
        "/v0/sql",
        403,
        "DATASOURCES:READ:events",
        token="jwt_fixed",
        params={"q": "SELECT * FROM events"},
    ),
    Case("jwt_reads_other_pipe", "GET", "/v0/pipes/other.json", 403, "PIPES:READ:other", token="jwt_fixed"),
    Case(
        "jwt_appends",
        "POST",
        "/v0/events",
        403,
        "DATASOURCES:APPEND:events",
        token="jwt_fixed",
        params={"name": "events"},
        content=EVENT,
    ),
    Case(
        "jwt_makes_tokens",
        "POST",
        "/v0/tokens",
        403,
        "TOKENS",
        token="jwt_fixed",
        params={"name": "x", "scope": "ADMIN"},
    ),
    Case(
        "tokens_grants_admin",
        "POST",
        "/v0/tokens",
        403,
        "Only an admin token can grant",
        token="tokens_only",
        params={"name": "boss", "scope": "ADMIN"},
    ),
    Case(
        "tokens_refreshes_admin",
        "POST",
        "/v0/tokens/Workspace admin token/refresh",
        403,
        "admin token",
        token="tokens_only",
    ),
    Case(
        "tokens_deletes_admin",
        "DELETE",
        "/v0/tokens/Workspace admin token",
        403,
        "admin token",
        token="tokens_only",
    ),
    Case(
        "tokens_sets_limits",
        "PUT",
        "/v0/workspace/limits",
        403,
        "ADMIN",
        token="tokens_only",
        params={"token_rps": "0"},
    ),
    Case("b_admin_reads_a_token", "GET", "/v0/tokens/%A_TOKEN_ID%", 404, "not found", token="admin_b"),
    Case(
        "b_admin_refreshes_a_token",
        "POST",
        "/v0/tokens/%A_TOKEN_ID%/refresh",
        404,
        "not found",
        token="admin_b",
    ),
    Case(
        "viewer_member_appends",
        "POST",
        "/v0/events",
        403,
        "DATASOURCES:APPEND:events",
        token="member_viewer",
        params={"name": "events"},
        content=EVENT,
    ),
    Case(
        "viewer_member_creates",
        "POST",
        "/v0/pipes",
        403,
        "PIPES:CREATE",
        token="member_viewer",
        json={"name": "hostile_pipe", "nodes": [{"name": "n", "sql": "SELECT 1"}]},
    ),
    Case(
        "viewer_member_drops",
        "DELETE",
        "/v0/datasources/events",
        403,
        "DATASOURCES:DROP:events",
        token="member_viewer",
    ),
    Case("viewer_member_tokens", "GET", "/v0/tokens", 403, "TOKENS", token="member_viewer"),
    Case(
        "viewer_member_adds_members",
        "PUT",
        "/v0/workspaces/%A_NAME%/users/",
        403,
        "ADMIN",
        token="member_viewer",
        params={"operation": "add", "users": "x@example.com", "role": "admin"},
    ),
]


@pytest.mark.parametrize("case", params(CASES))
def test_token_attack(token_world, case):
    check_refused(token_world, case)


def test_fixed_params_cannot_be_overridden(token_world):
    """The JWT fixes s=view: asking for buys, by param, by q= or through /v0/sql, still gives views."""
    c = token_world.client("jwt_fixed")
    for res in (
        c.get("/v0/pipes/ep.json", params={"s": "buy"}),
        c.get("/v0/pipes/ep.json", params={"s": "buy", "q": "SELECT * FROM _"}),
    ):
        assert res.status_code == 200, res.text
        assert "buy" not in res.text and "click" not in res.text
