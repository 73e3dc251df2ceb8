"""A workspace never sees another's names, data, tokens or stats: not in listings, not through
service data sources, not through OpenAPI, and not through error messages (a name of B is as
unknown to A as a name that exists nowhere)."""

from __future__ import annotations

import uuid

import pytest
from api_helpers import ok, poll


@pytest.fixture
def b_secrets(other_client, platform):
    tag = uuid.uuid4().hex[:8]
    names = {"ds": f"b_secret_ds_{tag}", "pipe": f"b_secret_pipe_{tag}", "token": f"b_secret_token_{tag}"}
    ok(other_client.post("/v0/datasources", data={"name": names["ds"], "schema": "`id` UInt64"}))
    ok(other_client.post("/v0/events", params={"name": names["ds"], "wait": "true"}, content=b'{"id": 7}\n'))
    ok(other_client.post("/v0/pipes", data={"name": names["pipe"], "sql": f"SELECT * FROM {names['ds']}"}))
    ok(other_client.post(f"/v0/pipes/{names['pipe']}/nodes/{names['pipe']}_0/endpoint"))
    ok(other_client.get(f"/v0/pipes/{names['pipe']}.json"))
    ok(other_client.post("/v0/tokens", params={"name": names["token"], "scope": "PIPES:CREATE"}))
    me = ok(other_client.get("/v0/workspace"))
    names["workspace_id"] = me["id"]
    names["database"] = platform.catalog.workspace(me["id"]).database
    # B's stats are written before A looks for them
    poll(
        lambda: ok(other_client.get("/v0/sql", params={"q": "SELECT count() c FROM tinybird.pipe_stats_rt"})),
        lambda r: r["data"][0]["c"] >= 1,
    )
    return names


def assert_hidden(text: str, names: dict) -> None:
    for value in names.values():
        assert value not in text, f"{value} leaked: {text[:300]}"


def test_listings_and_openapi(client, b_secrets):
    for path in (
        "/v0/datasources",
        "/v0/pipes",
        "/v0/tokens",
        "/v0/pipes/openapi.json",
        "/v0/jobs",
        "/v0/user/workspaces/",
    ):
        res = client.get(path)
        ok(res)
        assert_hidden(res.text, b_secrets)


@pytest.mark.parametrize("source", ["pipe_stats_rt", "pipe_stats", "datasources_ops_log", "jobs_log"])
def test_service_data_sources(client, b_secrets, source):
    res = client.get("/v0/sql", params={"q": f"SELECT * FROM tinybird.{source} FORMAT JSON"})
    ok(res)
    assert_hidden(res.text, b_secrets)


@pytest.mark.parametrize(
    "template",
    [
        "GET /v0/datasources/{ds}",
        "GET /v0/datasources/{ds}.datasource",
        "DELETE /v0/datasources/{ds}",
        "GET /v0/pipes/{pipe}",
        "GET /v0/pipes/{pipe}.json",
        "GET /v0/tokens/{token}",
        "GET /v0/workspaces/{workspace_id}",
        "SQL SELECT * FROM {ds}",
        "SQL SELECT * FROM {pipe}",
        "SQL SELECT * FROM {database}.{ds}",
    ],
)
def test_errors_do_not_tell_b_exists(client, b_secrets, template):
    """The answer about B's name equals the answer about a name that exists nowhere."""

    def ask(names):
        kind, rest = template.split(" ", 1)
        if kind == "SQL":
            res = client.get("/v0/sql", params={"q": rest.format(**names)})
        else:
            res = client.request(kind, rest.format(**names))
        return res.status_code, res.json()["error"]

    nowhere = {k: f"{k}_nowhere_{uuid.uuid4().hex[:6]}" for k in b_secrets}
    nowhere["workspace_id"] = str(uuid.uuid4())
    nowhere["database"] = "w_" + uuid.uuid4().hex
    status_b, error_b = ask(b_secrets)
    status_none, error_none = ask(nowhere)
    assert status_b == status_none and 400 <= status_b < 500
    for key in b_secrets:
        error_b = error_b.replace(b_secrets[key], "<name>")
        error_none = error_none.replace(nowhere[key], "<name>")
    assert error_b == error_none
