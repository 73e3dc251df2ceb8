"""Hostile request shapes: sizes, names, paths and definitions."""

from __future__ import annotations

import pytest
from cases_input import DEFINITIONS, NAMES, OVERSIZED, PATHS
from hostile import check_refused, params


@pytest.mark.parametrize("case", params(OVERSIZED))
def test_oversized(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(NAMES))
def test_names(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(PATHS))
def test_paths(world, case):
    check_refused(world, case)


@pytest.mark.parametrize("case", params(DEFINITIONS))
def test_definitions(world, case):
    check_refused(world, case)


def test_event_keys_that_need_quoting_are_stored(client):
    """Keys with a quote, a backslash or a backtick become JSONPaths the ingestion can follow (they
    used to make a data source whose events were acknowledged and never written)."""
    line = b'{"a\'b": 1, "back\\\\slash": 2, "x`y": 3}\n'
    res = client.post("/v0/events", params={"name": "odd_keys", "wait": "true"}, content=line)
    assert res.status_code == 200 and res.json() == {"successful_rows": 1, "quarantined_rows": 0}, res.text
    res = client.post("/v0/datasources", params={"name": "odd_import", "format": "ndjson"}, content=line)
    assert res.status_code == 200, res.text
    for name in ("odd_keys", "odd_import"):
        rows = client.get("/v0/sql", params={"q": f"SELECT * FROM {name}"}).json()["data"]
        assert rows == [{"a_b": 1, "back_slash": 2, "x_y": 3}], name
    datafile = client.get("/v0/datasources/odd_keys.datasource").text
    res = client.post("/v0/datasources", params={"name": "odd_copy"}, content=datafile)
    assert res.status_code == 200, res.text
    paths = {c["name"]: c["jsonpath"] for c in res.json()["datasource"]["columns"]}
    assert paths == {"a_b": "$['a\\'b']", "back_slash": "$['back\\\\slash']", "x_y": "$['x`y']"}
