"""verdin and tinybird-python-sdk, unchanged, against `tody serve`: events, CSV/NDJSON appends,
endpoint calls and SQL. Each client runs in the compat virtualenv's Python; the script prints JSON."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time

import httpx
import pytest

from conftest import CLIENT_ENV

pytestmark = pytest.mark.slow

SCHEMA = "`id` UInt64 `json:$.id`, `event` String `json:$.event`, `value` Float64 `json:$.value`"


def run_client(compat_bin, code: str, url: str, token: str) -> dict:
    env = {**os.environ, **CLIENT_ENV, "HOST": url, "TOKEN": token}
    res = subprocess.run(
        [str(compat_bin / "python"), "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def setup(url, token, name):
    h = {"Authorization": f"Bearer {token}"}
    res = httpx.post(
        f"{url}/v0/datasources", headers=h, data={"name": name, "schema": SCHEMA, "format": "ndjson"}
    )
    assert res.status_code == 200, res.text
    pipe = {
        "name": f"{name}_by_event",
        "nodes": [
            {
                "name": "n",
                "type": "endpoint",
                "sql": f"%\nSELECT event, count() AS c, sum(value) AS v FROM {name} "
                "WHERE event = {{String(event, 'click')}} GROUP BY event",
            }
        ],
    }
    res = httpx.post(f"{url}/v0/pipes", headers=h, json=pipe)
    assert res.status_code == 200, res.text


def test_verdin(compat_bin, compat_server):
    url, token = compat_server
    setup(url, token, "verdin_events")
    out = run_client(
        compat_bin,
        """
        import json, os
        from verdin import tinybird
        client = tinybird.Client(os.environ["TOKEN"], api=os.environ["HOST"])
        ds = client.datasource("verdin_events")
        sent = ds.send_events([{"id": 1, "event": "click", "value": 1.5}, {"id": 2, "event": "view", "value": 2}], wait=True)
        ds.append_ndjson([{"id": 3, "event": "click", "value": 3}])
        ds.append_csv([[4, "click", 4.0]])
        pipe = client.pipe("verdin_events_by_event")
        clicks = pipe.query({"event": "click"}).data
        views = pipe.query({"event": "view"}).data
        rows = client.sql("SELECT count() AS c FROM verdin_events").json().data
        print(json.dumps({"clicks": clicks, "views": views, "rows": rows, "sent": str(sent)}))
        """,
        url,
        token,
    )
    assert out["clicks"] == [{"event": "click", "c": 3, "v": 8.5}]
    assert out["views"] == [{"event": "view", "c": 1, "v": 2.0}]
    assert out["rows"] == [{"c": 4}]


def test_tinybird_python_sdk(compat_bin, compat_server):
    url, token = compat_server
    setup(url, token, "sdk_events")
    run_client(
        compat_bin,
        """
        import json, os
        from tb.datasource import Datasource
        with Datasource("sdk_events", os.environ["TOKEN"], api_url=os.environ["HOST"]) as ds:
            for i in range(100):
                ds << {"id": i, "event": "click" if i % 2 else "view", "value": i}
        print(json.dumps({"ok": True}))
        """,
        url,
        token,
    )
    h = {"Authorization": f"Bearer {token}"}
    rows = None
    for _ in range(100):  # the Events API answers 202: rows are in the table within a flush
        res = httpx.get(f"{url}/v0/pipes/sdk_events_by_event.json", headers=h, params={"event": "click"})
        rows = res.json()["data"]
        if rows and rows[0]["c"] == 50:
            break
        time.sleep(0.1)
    assert rows == [{"event": "click", "c": 50, "v": float(sum(range(1, 100, 2)))}]
