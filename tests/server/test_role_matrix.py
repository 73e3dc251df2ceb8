"""Every API route x every member role: the personal token of a viewer, a guest and an admin gets
what the README's role matrix says, and nothing more.

Requests name resources that do not exist, so an allowed call ends in 400/404 (never 403) and a
refused one in 403, and no call changes anything. A test fails when a route is added without a row
here, so the matrix cannot drift from the routes.
"""

from __future__ import annotations

import re
import uuid

import pytest
from api_helpers import ok
from starlette.testclient import TestClient

from tody.server.app import ROUTES

ROLES = ("viewer", "guest", "admin")
RANK = {"viewer": 0, "guest": 1, "admin": 2, "nobody": 3}

# route -> the least role that may call it ("nobody": no workspace token; user tokens only)
MATRIX = {
    "GET /v0/workspace": "viewer",
    "GET /v0/user/workspaces/": "viewer",
    "GET /v0/user/workspaces": "viewer",
    "POST /v0/workspaces": "nobody",
    "GET /v0/workspaces/{workspace}": "viewer",
    "DELETE /v0/workspaces/{workspace}": "admin",
    "GET /v0/workspaces/{workspace}/users": "viewer",
    "PUT /v0/workspaces/{workspace}/users/": "admin",
    "GET /v0/workspace/limits": "admin",
    "POST|PUT /v0/workspace/limits": "admin",
    "GET /v0/datasources": "viewer",
    "POST /v0/datasources/{name}/alter": "guest",
    "GET /v0/dependencies": "viewer",
    "POST /v0/datasources": "guest",
    "GET /v0/datasources/{name}.datasource": "viewer",
    "GET /v0/datasources/{name}": "viewer",
    "PUT /v0/datasources/{name}": "guest",
    "DELETE /v0/datasources/{name}": "guest",
    "POST /v0/datasources/{name}/truncate": "guest",
    "POST /v0/datasources/{name}/delete": "guest",
    "GET /v0/pipes": "viewer",
    "POST /v0/pipes": "guest",
    "GET /v0/pipes/openapi.json": "viewer",
    "GET|POST /v0/pipes/{name}.{extension}": "viewer",
    "GET /v1/pipes/{name}.pipe": "viewer",
    "GET /v0/pipes/{name}": "viewer",
    "PUT /v0/pipes/{name}": "guest",
    "DELETE /v0/pipes/{name}": "guest",
    "POST /v0/pipes/{name}/nodes": "guest",
    "PUT /v0/pipes/{name}/nodes/{node}": "guest",
    "DELETE /v0/pipes/{name}/nodes/{node}": "guest",
    "DELETE|POST /v0/pipes/{name}/nodes/{node}/endpoint": "guest",
    "GET /v0/jobs": "guest",
    "GET /v0/jobs/{job_id}": "viewer",
    "POST /v0/jobs/{job_id}/cancel": "guest",
    "GET|POST /v0/sql": "viewer",
    "GET|POST /v0/sql_tables": "viewer",
    "POST /v0/events": "guest",
    "POST /v0/pipes/{name}/nodes/{node}/materialization": "guest",
    "DELETE /v0/pipes/{name}/nodes/{node}/materialization": "guest",
    "POST /v0/pipes/{name}/nodes/{node}/population": "guest",
    "GET /v0/pipes/{name}/nodes/{node}/analysis": "guest",
    "POST|PUT /v0/pipes/{name}/nodes/{node}/copy": "guest",
    "DELETE /v0/pipes/{name}/nodes/{node}/copy": "guest",
    "POST /v0/pipes/{name}/copy": "guest",
    "POST /v0/pipes/{name}/copy/pause": "guest",
    "POST /v0/pipes/{name}/copy/resume": "guest",
    "POST /v0/pipes/{name}/copy/cancel": "guest",
    "GET /v0/tokens": "admin",
    "POST /v0/tokens": "admin",
    "GET /v0/tokens/{token}": "admin",
    "PUT /v0/tokens/{token}": "admin",
    "DELETE /v0/tokens/{token}": "admin",
    "POST /v0/tokens/{token}/refresh": "admin",
    "POST /v0/users": "nobody",
    "GET /v0/users": "nobody",
    "DELETE /v0/users/{user}": "nobody",
    "GET /v0/organizations/{organization}": "nobody",
    "GET /v0/organizations/{organization}/workspaces": "nobody",
    "PUT /v0/organizations/{organization}/admins": "nobody",
    "GET /v0/organizations/{organization}/consumption": "nobody",
    "POST /v0/datasources/{name}/share": "admin",
    "DELETE /v0/datasources/{name}/share": "admin",
}


def route_key(route) -> str:
    methods = "|".join(m for m in sorted(route.methods or ()) if m != "HEAD")
    return f"{methods} {route.path}"


API_ROUTES = [r for r in ROUTES if r.path.startswith(("/v0/", "/v1/"))]


def test_every_route_has_a_row_in_the_matrix():
    missing = [route_key(r) for r in API_ROUTES if route_key(r) not in MATRIX]
    assert not missing, f"add these routes to MATRIX: {missing}"


@pytest.fixture(scope="module")
def members(app, platform):
    """A workspace made by a user, with a viewer, a guest and an admin; their personal tokens."""
    first = platform.catalog.users()[0]
    with TestClient(app, headers={"Authorization": f"Bearer {platform.users.token_value(first)}"}) as root:
        owner = ok(
            root.post("/v0/users", json={"email": f"o{uuid.uuid4().hex[:8]}@x.io", "password": "p4ssword!"})
        )
        with TestClient(app, headers={"Authorization": f"Bearer {owner['token']}"}) as owner_client:
            ws = ok(owner_client.post("/v0/workspaces", params={"name": "matrix_" + uuid.uuid4().hex[:8]}))
            tokens = {"admin": ws["token"]}
            for role in ("viewer", "guest"):
                email = f"{role}{uuid.uuid4().hex[:8]}@x.io"
                user = ok(root.post("/v0/users", json={"email": email, "password": "p4ssword!"}))
                params = {"operation": "add", "users": email, "role": role}
                ok(owner_client.put(f"/v0/workspaces/{ws['id']}/users/", params=params))
                with TestClient(app, headers={"Authorization": f"Bearer {user['token']}"}) as c:
                    tokens[role] = ok(c.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))[
                        "token"
                    ]
    return ws, tokens


def _path(template: str, ws_id: str) -> str:
    values = {"workspace": ws_id, "extension": "json", "organization": str(uuid.uuid4())}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "no_such_" + m.group(1)), template)


KEYS = [route_key(r) for r in API_ROUTES if route_key(r) in MATRIX]
CASES = [(key, method, role) for key in KEYS for method in key.split(" ")[0].split("|") for role in ROLES]


@pytest.mark.parametrize(
    "key, method, role", CASES, ids=[f"{m} {k.split(' ')[1]} as {r}" for k, m, r in CASES]
)
def test_route_as_role(app, members, key, method, role):
    ws, tokens = members
    workspace = str(uuid.uuid4()) if method == "DELETE" else ws["id"]  # never delete the test's own
    path = _path(key.split(" ")[1], workspace)
    if key.startswith(("POST /v0/datasources", "POST /v0/events")) and "{" not in key:
        path += "?name=no_such_name&mode=create"
    with TestClient(app, headers={"Authorization": f"Bearer {tokens[role]}"}) as c:
        res = c.request(method, path)
    allowed = RANK[role] >= RANK[MATRIX[key]]
    if allowed:
        assert res.status_code != 403 and res.status_code < 500, res.text
    else:
        assert res.status_code == 403, f"{role} {method} {path}: {res.status_code} {res.text}"
        assert res.json()["error"]
