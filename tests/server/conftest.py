from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.fixture
def bearer(app):
    """Clients that send a given token: `bearer(value)`; closed after the test."""
    clients = []

    def make(value: str) -> TestClient:
        c = TestClient(app, headers={"Authorization": f"Bearer {value}"})
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def make_events(client, engine, workspace):
    """Create the `events` data source (id, event, value) in the test's workspace and fill it:
    `rows` rows whose event cycles through `kinds` and whose value is `number * scale`."""

    def make(rows: int = 30, kinds: tuple[str, ...] = ("click", "view", "buy"), scale: float = 1) -> str:
        schema = "`id` UInt64, `event` String, `value` Float64"
        res = client.post(
            "/v0/datasources", data={"name": "events", "schema": schema, "engine_sorting_key": "id"}
        )
        assert res.status_code == 200, res.text
        table = res.json()["datasource"]["id"]
        names = ", ".join(f"'{k}'" for k in kinds)
        engine.execute(
            f"INSERT INTO {workspace.database}.{table} "
            f"SELECT number, [{names}][number % {len(kinds)} + 1], number * {scale} FROM numbers({rows})"
        )
        return table

    return make
