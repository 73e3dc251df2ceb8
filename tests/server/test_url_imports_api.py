"""Imports from a URL (`POST /v0/datasources` with `url=`): a job downloads the file and imports it."""

from __future__ import annotations

import dataclasses
import gzip

import pytest
from api_helpers import poll
from starlette.testclient import TestClient

from tody.services.errors import BadRequest
from tody.services.ingest import url_import

SCHEMA = "`id` UInt64, `name` String"


def finished(client, job_id):
    return poll(lambda: client.get(f"/v0/jobs/{job_id}").json(), lambda j: j["status"] in ("done", "error"))


def count(client, table="events"):
    return client.get("/v0/sql", params={"q": f"SELECT count() AS c FROM {table}"}).json()["data"][0]["c"]


@pytest.fixture
def events(client):
    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200


def spooled(platform, import_id):
    return platform.imports.spool_path(import_id).exists()


def test_csv_url_append_is_a_job(client, platform, events, file_server, private_urls):
    lines = [f"{i},n{i}" for i in range(1000)] + ["not_a_number,x"]
    (file_server.dir / "rows.csv").write_text("\n".join(lines) + "\n")
    res = client.post("/v0/datasources", params={"name": "events", "mode": "append"}, data={})
    assert res.status_code == 400  # no data at all
    res = client.post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": file_server.url("rows.csv")}
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert set(body) == {"id", "job_id", "job_url", "job", "datasource", "status", "import_id"}
    assert body["id"] == body["job_id"] and body["job_url"].endswith(f"/v0/jobs/{body['id']}")
    assert body["status"] == "waiting" and body["job"]["kind"] == "import"
    assert body["datasource"]["name"] == "events" and body["datasource"]["id"].startswith("t_")
    assert body["job"]["url"] == file_server.url("rows.csv") and body["job"]["mode"] == "append"
    job = finished(client, body["job_id"])
    assert job["status"] == "done", job
    assert job["rows"] == 1000 and job["quarantine_rows"] == 1 and job["invalid_lines"] == 1
    assert job["import_id"] == body["import_id"] and job["statistics"]["row_count"] == 1000
    assert job["progress"] == 1.0 and job["error"] is False
    assert job["datasource"]["statistics"]["row_count"] == 1000
    assert count(client) == 1000 and count(client, "events_quarantine") == 1
    assert not spooled(platform, body["import_id"])
    assert [j["id"] for j in client.get("/v0/jobs", params={"kind": "import"}).json()["jobs"]] == [body["id"]]
    q = (
        "SELECT event_type, result, rows, rows_quarantine, import_id FROM tinybird.datasources_ops_log "
        f"WHERE job_id = '{body['job_id']}'"
    )
    rows = poll(lambda: client.get("/v0/sql", params={"q": q}).json()["data"], lambda r: len(r) >= 1)
    assert rows == [
        {
            "event_type": "append",
            "result": "ok",
            "rows": 1000,
            "rows_quarantine": 1,
            "import_id": body["import_id"],
        }
    ]


def test_ndjson_url_as_a_form_field_format_from_the_extension(client, file_server, private_urls):
    schema = "`id` UInt64 `json:$.id`, `name` String `json:$.who.name`"
    assert client.post("/v0/datasources", data={"name": "events", "schema": schema}).status_code == 200
    rows = "".join(f'{{"id": {i}, "who": {{"name": "n{i}"}}}}\n' for i in range(250))
    (file_server.dir / "rows.ndjson").write_text(rows)
    res = client.post("/v0/datasources?name=events&mode=append", data={"url": file_server.url("rows.ndjson")})
    assert res.status_code == 200, res.text
    assert res.json()["job"]["format"] == "ndjson"
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "done" and job["rows"] == 250 and job["quarantine_rows"] == 0, job
    assert count(client) == 250


def test_gzip_url_and_redirects(client, file_server, private_urls, events):
    rows = "".join(f"{i},n{i}\n" for i in range(5000)).encode()
    (file_server.dir / "rows.csv.gz").write_bytes(gzip.compress(rows))
    res = client.post(
        "/v0/datasources",
        params={"name": "events", "mode": "append", "url": file_server.url("redirect/rows.csv.gz")},
    )
    assert res.status_code == 200, res.text
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "done" and job["rows"] == 5000, job
    assert count(client) == 5000


def test_create_and_replace_from_a_url(client, file_server, private_urls):
    (file_server.dir / "people.csv").write_text("id,name,score\n1,ann,1.5\n2,bob,2.5\n")
    res = client.post(
        "/v0/datasources", params={"name": "people", "mode": "create", "url": file_server.url("people.csv")}
    )
    assert res.status_code == 200, res.text
    assert res.json()["datasource"] == {"name": "people"}  # created by the job
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "done" and job["rows"] == 2, job
    assert job["datasource"]["name"] == "people"
    described = client.get("/v0/datasources/people").json()
    assert [c["name"] for c in described["columns"]] == ["id", "name", "score"]

    (file_server.dir / "more.csv").write_text("id,name,score\n7,eve,0.5\n")
    res = client.post(
        "/v0/datasources", params={"name": "people", "mode": "replace", "url": file_server.url("more.csv")}
    )
    assert res.status_code == 200, res.text
    assert finished(client, res.json()["job_id"])["status"] == "done"
    got = client.get("/v0/sql", params={"q": "SELECT id, name FROM people"}).json()["data"]
    assert got == [{"id": 7, "name": "eve"}]


def test_remote_errors_end_the_job_with_the_status(client, platform, file_server, private_urls, events):
    res = client.post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": file_server.url("missing.csv")}
    )
    assert res.status_code == 200, res.text
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "error"
    assert "404" in job["error"] and file_server.url("missing.csv") in job["error"], job
    assert not spooled(platform, res.json()["import_id"])
    q = f"SELECT result, error FROM tinybird.datasources_ops_log WHERE job_id = '{job['id']}'"
    logged = poll(lambda: client.get("/v0/sql", params={"q": q}).json()["data"], lambda r: len(r) >= 1)
    assert logged[0]["result"] == "error" and "404" in logged[0]["error"]

    res = client.post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": file_server.url("status/503")}
    )
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "error" and "HTTP 503" in job["error"], job

    res = client.post("/v0/datasources?name=events&mode=append&url=http://127.0.0.1:9/x.csv")
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "error" and "connection failed" in job["error"], job
    assert count(client) == 0


def test_every_row_bad_is_a_job_error_with_the_counts(client, file_server, private_urls, events):
    (file_server.dir / "bad.csv").write_text("x,1\ny,2\n")
    res = client.post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": file_server.url("bad.csv")}
    )
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "error" and job["quarantine_rows"] == 2 and job["rows"] == 0, job
    assert count(client, "events_quarantine") == 2


def test_size_cap(client, platform, file_server, private_urls, monkeypatch, events):
    monkeypatch.setattr(platform, "config", dataclasses.replace(platform.config, import_max_url_bytes=100))
    (file_server.dir / "big.csv").write_text("".join(f"{i},n{i}\n" for i in range(100)))
    res = client.post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": file_server.url("big.csv")}
    )
    job = finished(client, res.json()["job_id"])
    assert job["status"] == "error" and "limit of 100 bytes" in job["error"], job
    assert count(client) == 0


def test_cancel_while_downloading(client, platform, file_server, private_urls, events):
    res = client.post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": file_server.url("slow/200")}
    )
    job_id = res.json()["job_id"]
    poll(lambda: client.get(f"/v0/jobs/{job_id}").json(), lambda j: j["status"] == "working")
    assert client.post(f"/v0/jobs/{job_id}/cancel").status_code == 200
    job = poll(lambda: client.get(f"/v0/jobs/{job_id}").json(), lambda j: j["status"] == "cancelled")
    assert job["status"] == "cancelled", job
    assert not spooled(platform, res.json()["import_id"]) and count(client) == 0


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"mode": "append", "url": "ftp://example.com/x.csv"}, 400, "http://"),
        ({"mode": "append", "url": "file:///etc/passwd"}, 400, "http://"),
        ({"mode": "append", "url": "http:///x.csv"}, 400, "no host"),
        ({"mode": "append", "url": "http://127.0.0.1/x.csv"}, 400, "private"),
        ({"mode": "append", "url": "http://[::1]:8080/x.csv"}, 400, "private"),
        ({"mode": "append", "url": "http://169.254.169.254/latest/meta-data"}, 400, "private"),
        ({"mode": "append", "url": "http://10.1.2.3/x.csv"}, 400, "private"),
        ({"mode": "append", "url": "http://localhost:7181/x.csv"}, 400, "private"),
        ({"mode": "append", "format": "xml", "url": "http://93.184.215.14/x.csv"}, 400, "format"),
        ({"mode": "upsert", "url": "http://93.184.215.14/x.csv"}, 400, "mode"),
        ({"mode": "create", "url": "http://93.184.215.14/x.csv"}, 400, "already exists"),
        ({"mode": "create", "name": "1bad", "url": "http://93.184.215.14/x.csv"}, 400, "Invalid"),
        ({"mode": "append", "name": "", "url": "http://93.184.215.14/x.csv"}, 400, "name"),
    ],
)
def test_bad_requests_are_refused_before_any_job(client, events, params, status, fragment):
    res = client.post("/v0/datasources", params={"name": "events", **params})
    assert res.status_code == status and fragment in res.json()["error"], res.text
    assert client.get("/v0/jobs").json()["jobs"] == []


def test_scopes_are_checked_before_any_job(app, platform, workspace, client, events):
    from tody.services.tokens import Scope

    _, reader = platform.tokens.create(workspace, "r", [Scope.parse("DATASOURCES:READ:events")])
    res = TestClient(app, headers={"Authorization": f"Bearer {reader}"}).post(
        "/v0/datasources", params={"name": "events", "mode": "append", "url": "http://93.184.215.14/x.csv"}
    )
    assert res.status_code == 403 and "DATASOURCES:APPEND:events" in res.json()["error"]
    res = TestClient(app, headers={"Authorization": f"Bearer {reader}"}).post(
        "/v0/datasources", params={"name": "other", "mode": "create", "url": "http://93.184.215.14/x.csv"}
    )
    assert res.status_code == 403
    assert client.get("/v0/jobs").json()["jobs"] == []


def test_the_download_checks_the_addresses_it_connects_to(file_server, tmp_path):
    """Not only the request: every connection the download opens (redirects too, a host that resolves
    differently by then) is checked."""
    limits = url_import.UrlLimits()
    with pytest.raises(BadRequest, match="private"):
        url_import.download(file_server.url("redirect/x.csv"), tmp_path / "x", limits)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("ip", "refused"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_refused_addresses(ip, refused):
    assert url_import.refused_address(ip) is refused


def test_urls_are_shown_without_credentials():
    assert url_import.redact("https://user:secret@example.com/x.csv?a=1") == "https://example.com/x.csv?a=1"
    assert url_import.filename_of("https://example.com/dir/rows%20a.ndjson.gz?sig=1") == "rows a.ndjson.gz"
