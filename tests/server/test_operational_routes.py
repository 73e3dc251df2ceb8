from __future__ import annotations

from starlette.testclient import TestClient


def test_health(app):
    res = TestClient(app).get("/health")
    assert res.status_code == 200 and res.json()["status"] == "ok"


def test_metrics_count_requests_per_route_template(app, client):
    client.get("/v0/datasources/does_not_exist")
    text = TestClient(app).get("/metrics").text
    assert 'tody_http_requests_total{method="GET",route="/v0/datasources/{name}",status="404"}' in text
    assert "tody_engine_pool_in_use" in text
    assert "tody_http_request_duration_seconds_bucket" in text
    assert "tody_queries_total" in text or "tody_queries" in text


def test_local_token_discovery_on_loopback(app, platform):
    body = TestClient(app).get("/tokens").json()
    assert body["workspace_admin_token"] == body["admin_token"]
    assert TestClient(app).get(f"/v0/workspace?token={body['admin_token']}").status_code == 200


def test_unknown_route_is_json_404(app):
    res = TestClient(app).get("/v0/nothing-here")
    assert res.status_code == 404 and "error" in res.json()
