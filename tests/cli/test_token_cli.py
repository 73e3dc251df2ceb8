"""`tody token …` and `tody workspace limits` against a real HTTP server (the session's app on a free port)."""

from __future__ import annotations

import time

import click
import httpx
import jwt
import orjson
import pytest
from click.testing import CliRunner

from tody.cli.main import cli
from tody.cli.token import jwt_scopes, parse_fixed_params, parse_ttl, static_scopes


def run(live_server, token, *args, input=None):
    return CliRunner().invoke(
        cli, [*args, "--host", live_server, "--token", token], input=input, catch_exceptions=False
    )


@pytest.fixture
def tenants(api):
    """A data source of rows per tenant and `by_tenant`, a published template pipe over it."""
    api("POST", "/v0/datasources", data={"name": "sales", "schema": "`tenant` String, `amount` UInt32"})
    rows = [("a", 1), ("a", 2), ("b", 10), ("c", 100)]
    body = b"".join(orjson.dumps({"tenant": t, "amount": n}) + b"\n" for t, n in rows)
    api("POST", "/v0/events", params={"name": "sales", "wait": "true"}, content=body)
    sql = "%\nSELECT tenant, amount FROM sales WHERE tenant = {{String(tenant, 'a')}} ORDER BY amount"
    api(
        "POST",
        "/v0/pipes",
        json={"name": "by_tenant", "nodes": [{"name": "q", "type": "endpoint", "sql": sql}]},
    )
    return "by_tenant"


def test_static_token_lifecycle(live_server, workspace_token, tenants):
    def pipes_with(value):
        return httpx.get(f"{live_server}/v0/pipes", headers={"Authorization": f"Bearer {value}"})

    res = run(
        live_server,
        workspace_token,
        *("token", "create", "static", "reader", "--description", "reads sales"),
        *("--scope", "DATASOURCES:READ", "--resource", "sales", "--filter", "tenant = 'b'"),
        *("--scope", "PIPES:READ:by_tenant", "--scope", "TOKENS"),
    )
    assert res.exit_code == 0, res.output
    assert "Token 'reader' created" in res.stderr
    value = res.stdout.strip()
    assert value.startswith("p.") and "\n" not in value

    res = run(live_server, workspace_token, "token", "ls", "--format", "json")
    listed = {t["name"]: t for t in orjson.loads(res.stdout)["tokens"]}
    assert listed["reader"]["token"] == value and listed["reader"]["description"] == "reads sales"
    assert listed["reader"]["scopes"] == [
        {"type": "DATASOURCES:READ", "resource": "sales", "filter": "tenant = 'b'"},
        {"type": "PIPES:READ", "resource": "by_tenant"},
        {"type": "TOKENS"},
    ]
    res = run(live_server, workspace_token, "token", "ls", "--match", "READ", "--format", "json")
    assert [t["name"] for t in orjson.loads(res.stdout)["tokens"]] == ["reader"]
    res = run(live_server, workspace_token, "token", "ls")
    assert res.exit_code == 0 and "reader" in res.output and "Workspace admin token" in res.output

    res = run(live_server, workspace_token, "token", "scopes", "reader")
    assert res.exit_code == 0 and "tenant = 'b'" in res.output and "by_tenant" in res.output
    res = run(live_server, workspace_token, "token", "copy", "reader")
    assert res.stdout == value + "\n"

    assert pipes_with(value).status_code == 200
    q = {"q": "SELECT sum(amount) AS s FROM sales"}
    got = httpx.get(f"{live_server}/v0/sql", params=q, headers={"Authorization": f"Bearer {value}"})
    assert got.json()["data"] == [{"s": 10}]  # the filter holds

    res = run(live_server, workspace_token, "token", "refresh", "reader", input="n\n")
    assert res.exit_code == 1 and pipes_with(value).status_code == 200  # not confirmed: nothing changed
    res = run(live_server, workspace_token, "token", "refresh", "reader", "--yes")
    assert res.exit_code == 0, res.output
    new = res.stdout.strip()
    assert new.startswith("p.") and new != value
    assert pipes_with(value).status_code == 403 and pipes_with(new).status_code == 200

    # creating an existing token replaces its scopes, as `tb token create static` does
    res = run(live_server, workspace_token, "token", "create", "static", "reader", "--scope", "PIPES:CREATE")
    assert res.exit_code == 0 and "updated" in res.stderr and res.stdout.strip() == new
    res = run(live_server, workspace_token, "token", "scopes", "reader", "--format", "json")
    assert orjson.loads(res.stdout) == {"scopes": [{"type": "PIPES:CREATE"}]}

    res = run(live_server, workspace_token, "token", "rm", "reader", input="y\n")
    assert res.exit_code == 0 and "Token 'reader' removed" in res.output
    assert pipes_with(new).status_code == 403
    res = run(live_server, workspace_token, "token", "ls", "--format", "json")
    assert "reader" not in {t["name"] for t in orjson.loads(res.stdout)["tokens"]}


def test_create_static_json_prints_the_object(live_server, workspace_token):
    res = run(
        live_server,
        workspace_token,
        "token",
        "create",
        "static",
        "maker",
        "--scope",
        "PIPES:CREATE",
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    body = orjson.loads(res.stdout)
    assert body["name"] == "maker" and body["scopes"] == [{"type": "PIPES:CREATE"}] and body["token"]


def test_jwt_with_fixed_params_reads_only_its_rows(live_server, workspace_token, tenants):
    res = run(
        live_server,
        workspace_token,
        *("token", "create", "jwt", "tenant_b", "--ttl", "1h"),
        *("--scope", "PIPES:READ", "--resource", "by_tenant", "--fixed-params", "tenant=b", "--rps", "50"),
    )
    assert res.exit_code == 0, res.output
    assert "expires at" in res.stderr
    value = res.stdout.strip()
    claims = jwt.decode(value, options={"verify_signature": False})
    assert abs(claims["exp"] - (time.time() + 3600)) < 30
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "by_tenant", "fixed_params": {"tenant": "b"}}
    ]
    assert claims["limits"] == {"rps": 50}

    url = f"{live_server}/v0/pipes/by_tenant.json"
    for params in ({}, {"tenant": "a"}, {"tenant": "c"}):
        got = httpx.get(url, params={**params, "token": value})
        assert got.status_code == 200, got.text
        assert got.json()["data"] == [{"tenant": "b", "amount": 10}]
    assert httpx.get(f"{live_server}/v0/pipes/nope.json", params={"token": value}).status_code in (403, 404)

    res = run(
        live_server,
        workspace_token,
        *("token", "create", "jwt", "two", "--ttl", "90m", "--format", "json"),
        *(
            "--scope",
            "DATASOURCES:READ",
            "--scope",
            "PIPES:READ",
            "--resource",
            "sales",
            "--resource",
            "by_tenant",
        ),
        *("--fixed-params", "", "--fixed-params", "tenant=c"),
    )
    assert res.exit_code == 0, res.output
    body = orjson.loads(res.stdout)
    assert abs(body["expiration_time"] - (time.time() + 5400)) < 30
    got = httpx.get(url, params={"token": body["token"]})
    assert got.json()["data"] == [{"tenant": "c", "amount": 100}]


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("3600", 3600),
        ("90s", 90),
        ("30m", 1800),
        ("30min", 1800),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("2 days", 172800),
        ("1w", 604800),
        ("1.5h", 5400),
        (" 2H ", 7200),
    ],
)
def test_ttl_parsing(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "0", "0s", "-5m", "h1"])
def test_bad_ttls_are_refused(text):
    with pytest.raises(ValueError):
        parse_ttl(text)


def test_bad_ttl_is_a_usage_error(live_server, workspace_token):
    res = run(
        live_server,
        workspace_token,
        "token",
        "create",
        "jwt",
        "x",
        "--ttl",
        "soon",
        "--scope",
        "PIPES:READ",
        "--resource",
        "p",
    )
    assert res.exit_code == 2 and "--ttl" in res.output and "duration" in res.output


def test_scope_and_option_pairing():
    order = ["scopes", "scopes", "resources", "filters", "scopes", "description", "scopes", "filters"]
    got = static_scopes(
        order,
        ("TOKENS", "DATASOURCES:READ", "PIPES:READ:p", "DATASOURCES:READ:e"),
        ("ds",),
        ("a = 1", "b = 2"),
    )
    assert got == ["TOKENS", "DATASOURCES:READ:ds:a = 1", "PIPES:READ:p", "DATASOURCES:READ:e:b = 2"]
    for order, scopes, resources, filters, says in [
        (["resources", "scopes"], ("PIPES:READ",), ("p",), (), "must come after"),
        (["scopes", "resources", "resources"], ("PIPES:READ",), ("p", "q"), (), "more than one --resource"),
        (["scopes", "resources"], ("PIPES:READ:p",), ("q",), (), "already names its resource"),
        (["scopes", "filters"], ("DATASOURCES:READ",), (), ("x = 1",), "--filter needs a resource"),
    ]:
        with pytest.raises(click.UsageError, match=says):
            static_scopes(order, scopes, resources, filters)
    assert parse_fixed_params("a=1, b = x ,") == {"a": "1", "b": "x"}
    assert jwt_scopes(("PIPES:READ",), ("p",), ("",), ("n > 1",)) == [
        {"type": "PIPES:READ", "resource": "p", "filter": "n > 1"}
    ]
    with pytest.raises(click.UsageError, match="only go with a PIPES:READ"):
        jwt_scopes(("DATASOURCES:READ",), ("d",), ("a=1",), ())


def test_usage_errors_exit_2(live_server, workspace_token):
    base = ("token", "create", "jwt", "x", "--ttl", "1h")
    res = run(
        live_server,
        workspace_token,
        *base,
        "--scope",
        "PIPES:READ",
        "--scope",
        "PIPES:READ",
        "--resource",
        "p",
    )
    assert (
        res.exit_code == 2 and "Give one --resource per --scope: got 2 --scope and 1 --resource" in res.output
    )
    res = run(
        live_server,
        workspace_token,
        *base,
        "--scope",
        "PIPES:READ",
        "--resource",
        "p",
        "--fixed-params",
        "nokey",
    )
    assert res.exit_code == 2 and "key=value" in res.output
    res = run(live_server, workspace_token, *base, "--scope", "ADMIN", "--resource", "p")
    assert res.exit_code == 2
    res = run(
        live_server,
        workspace_token,
        "token",
        "create",
        "static",
        "x",
        "--resource",
        "p",
        "--scope",
        "PIPES:READ",
    )
    assert res.exit_code == 2 and "must come after the --scope" in res.output
    res = run(live_server, workspace_token, "token", "create", "static", "x")
    assert res.exit_code == 2 and "--scope" in res.output
    res = run(live_server, workspace_token, "workspace", "limits", "--token-rps", "fast")
    assert res.exit_code == 2 and "whole number" in res.output
    res = run(live_server, workspace_token, "workspace", "limits", "--endpoint", "p")
    assert res.exit_code == 2 and "PIPE=N" in res.output


def test_server_errors_exit_1_with_the_message(live_server, workspace_token, tenants):
    res = run(live_server, workspace_token, "token", "rm", "nope", "--yes")
    assert res.exit_code == 1 and "Token 'nope' not found" in res.output and "HTTP 404" in res.output
    res = run(
        live_server,
        workspace_token,
        "token",
        "create",
        "static",
        "bad",
        "--scope",
        "DATASOURCES:READ",
        "--resource",
        "missing",
    )
    assert res.exit_code == 1 and "Data Source 'missing' does not exist" in res.output
    res = run(live_server, workspace_token, "token", "create", "static", "bad", "--scope", "FLY")
    assert res.exit_code == 1 and "Unknown scope 'FLY'" in res.output
    res = run(
        live_server,
        workspace_token,
        "token",
        "create",
        "jwt",
        "j",
        "--ttl",
        "1h",
        "--scope",
        "PIPES:READ",
        "--resource",
        "missing",
    )
    assert res.exit_code == 1 and "Pipe 'missing' does not exist" in res.output
    res = run(live_server, workspace_token, "token", "refresh", "nope", "--yes")
    assert res.exit_code == 1 and "HTTP 404" in res.output
    res = run(live_server, workspace_token, "token", "rm", "Workspace admin token", "--yes")
    assert res.exit_code == 1 and "HTTP 409" in res.output
    res = run(live_server, workspace_token, "workspace", "limits", "--endpoint", "missing=5")
    assert res.exit_code == 1 and "no pipe 'missing'" in res.output

    manager = run(
        live_server, workspace_token, "token", "create", "static", "manager", "--scope", "TOKENS"
    ).stdout.strip()
    res = run(live_server, manager, "token", "copy", "Workspace admin token")
    assert res.exit_code == 1 and "only shown to admin tokens" in res.output
    res = run(live_server, manager, "workspace", "limits")
    assert res.exit_code == 1 and "HTTP 403" in res.output


def test_workspace_limits_set_then_shown(live_server, workspace_token, tenants):
    res = run(live_server, workspace_token, "workspace", "limits", "--format", "json")
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.stdout)["endpoints"] == {}

    res = run(
        live_server,
        workspace_token,
        *("workspace", "limits", "--token-rps", "500", "--endpoint-rps", "0", "--endpoint", "by_tenant=7"),
    )
    assert res.exit_code == 0, res.output
    assert "500" in res.output and "endpoint by_tenant" in res.output and "no limit" in res.output
    res = run(live_server, workspace_token, "workspace", "limits", "--format", "json")
    assert orjson.loads(res.stdout) == {"token_rps": 500, "endpoint_rps": 0, "endpoints": {"by_tenant": 7}}
    res = run(live_server, workspace_token, "workspace", "limits")
    assert res.exit_code == 0 and "by_tenant" in res.output and "7" in res.output

    headers = {"Authorization": f"Bearer {workspace_token}"}
    got = httpx.get(f"{live_server}/v0/pipes/by_tenant.json", headers=headers)
    assert got.headers["X-RateLimit-Limit"] == "7"

    res = run(
        live_server,
        workspace_token,
        *(
            "workspace",
            "limits",
            "--token-rps",
            "default",
            "--endpoint",
            "by_tenant=default",
            "--format",
            "json",
        ),
    )
    assert res.exit_code == 0, res.output
    body = orjson.loads(res.stdout)
    assert body["endpoints"] == {} and body["endpoint_rps"] == 0 and body["token_rps"] == 0


def test_every_command_has_help():
    runner = CliRunner()
    for args in (
        ["token"],
        ["token", "ls"],
        ["token", "create"],
        ["token", "create", "static"],
        ["token", "create", "jwt"],
        ["token", "rm"],
        ["token", "refresh"],
        ["token", "scopes"],
        ["token", "copy"],
        ["workspace"],
        ["workspace", "limits"],
    ):
        res = runner.invoke(cli, [*args, "--help"])
        assert res.exit_code == 0 and "Usage: " in res.output and len(res.output.splitlines()) > 4, args
