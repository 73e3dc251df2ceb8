"""The everyday commands (datasource, pipe, job, sql) follow one set of conventions, against a real
server: `--format json` listings are JSON alone on stdout, destructive commands ask first unless
`--yes` (and "n" changes nothing), failures exit 1 with the server's message, progress goes to stderr,
every command's --help has an example."""

from __future__ import annotations

import csv
import io
import time

import click
import orjson
import pytest
from cli_helpers import ok, run

from tody.cli.main import cli


@pytest.fixture
def tody(live_server, workspace_token):
    """`tody ARGS…` as the workspace admin."""

    def invoke(*args, input=None):
        return run(live_server, *args, token=workspace_token, input=input)

    return invoke


@pytest.fixture
def events(api):
    """Data source `events` with ten rows (n = 0..9) and `evens`, a published pipe that reads it."""
    api("POST", "/v0/datasources", data={"name": "events", "schema": "`n` UInt64 `json:$.n`, `tag` String"})
    body = b"".join(orjson.dumps({"n": i, "tag": "even" if i % 2 == 0 else "odd"}) + b"\n" for i in range(10))
    api("POST", "/v0/events", params={"name": "events", "wait": "true"}, content=body)
    sql = "%\nSELECT n, tag FROM events WHERE n % 2 = 0 AND n < {{UInt64(below, 10)}} ORDER BY n"
    api("POST", "/v0/pipes", json={"name": "evens", "nodes": [{"name": "q", "type": "endpoint", "sql": sql}]})
    return "events"


def count(tody, table="events") -> int:
    return orjson.loads(ok(tody("sql", f"SELECT count() AS c FROM {table}")).stdout)["data"][0]["c"]


def names(res, key: str) -> list[str]:
    return [item["name"] for item in orjson.loads(res.stdout)[key]]


# -- listings --------------------------------------------------------------------------------------


def test_every_listing_prints_json_alone_on_stdout(tody, api, events, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # tables as wide as a usual terminal, not 80 columns
    api("POST", "/v0/datasources", data={"name": "other", "schema": "`n` UInt64"})

    res = ok(tody("datasource", "ls", "--format", "json"))
    assert sorted(names(res, "datasources")) == ["events", "other"]
    assert names(ok(tody("datasource", "ls", "--match", "EVE", "--format", "json")), "datasources") == [
        "events"
    ]
    listed = {d["name"]: d for d in orjson.loads(res.stdout)["datasources"]}
    assert listed["events"]["statistics"]["row_count"] == 10
    table = ok(tody("datasource", "ls")).stdout
    assert "events" in table and "other" in table and "10" in table

    assert names(ok(tody("pipe", "ls", "--format", "json")), "pipes") == ["evens"]
    assert names(ok(tody("pipe", "ls", "--match", "nope", "--format", "json")), "pipes") == []
    assert "evens" in ok(tody("pipe", "ls")).stdout

    ok(tody("datasource", "delete", "events", "--sql-condition", "n = 0", "--yes", "--wait"))
    res = ok(tody("job", "ls", "--format", "json"))
    jobs = orjson.loads(res.stdout)["jobs"]
    assert [(j["kind"], j["status"]) for j in jobs] == [("delete_data", "done")]
    assert orjson.loads(ok(tody("job", "ls", "--kind", "import", "--format", "json")).stdout)["jobs"] == []
    assert orjson.loads(ok(tody("job", "ls", "--status", "done", "--format", "json")).stdout)["jobs"] == jobs
    table = ok(tody("job", "ls")).stdout
    assert jobs[0]["id"] in table and "delete_data" in table and "events" in table

    assert names(ok(tody("token", "ls", "--format", "json")), "tokens") == ["Workspace admin token"]


# -- imports ---------------------------------------------------------------------------------------


def test_append_a_file_shows_an_upload_bar_and_the_row_count(tody, api, tmp_path):
    api("POST", "/v0/datasources", data={"name": "big", "schema": "`id` UInt64, `name` String"})
    path = tmp_path / "rows.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    for i in range(120_000):  # ~2 MB: more than one chunk of the upload
        writer.writerow((i, f"name-{i}"))
    path.write_text(out.getvalue())
    size_mb = path.stat().st_size / 1e6
    assert size_mb > 1.1

    res = ok(tody("datasource", "append", "big", str(path)))
    assert res.stdout == "120000 row(s) appended to 'big'\n"
    assert "uploaded rows.csv" in res.stderr and f"{size_mb:.1f}/{size_mb:.1f} MB" in res.stderr
    assert count(tody, "big") == 120_000


def test_replace_asks_first(tody, events, tmp_path):
    path = tmp_path / "new.ndjson"
    path.write_text('{"n": 100, "tag": "x"}\n')
    res = tody("datasource", "replace", "events", str(path), input="n\n")
    assert res.exit_code == 1 and "Replace every row of 'events' with new.ndjson?" in res.stderr
    assert "Aborted" in res.stderr and count(tody) == 10
    res = ok(tody("datasource", "replace", "events", str(path), "--yes"))
    assert "1 row(s) now in 'events'" in res.stdout and count(tody) == 1


# -- destructive commands ----------------------------------------------------------------------------


def test_truncate_and_delete_ask_first(tody, events):
    res = tody("datasource", "truncate", "events", input="n\n")
    assert res.exit_code == 1 and "Remove every row of 'events'?" in res.stderr and count(tody) == 10

    delete = ("datasource", "delete", "events", "--sql-condition", "tag = 'odd'")
    res = ok(tody(*delete, "--dry-run"))  # counts, asks nothing
    assert res.stdout == "5 row(s) would be deleted\n" and count(tody) == 10
    res = tody(*delete, input="n\n")
    assert res.exit_code == 1 and "Aborted" in res.stderr and count(tody) == 10
    res = ok(tody(*delete, "--wait", input="y\n"))
    assert "5 row(s) deleted" in res.stdout and "delete_data job" in res.stderr and "100%" in res.stderr
    assert count(tody) == 5

    res = ok(tody("datasource", "truncate", "events", "--yes"))
    assert res.stdout == "Data Source 'events' truncated\n" and count(tody) == 0


def test_datasource_rm_asks_first_and_needs_force_while_pipes_read_it(tody, api, events):
    res = tody("datasource", "rm", "events", input="y\n")
    assert res.exit_code == 1 and "is used by evens" in res.stderr and "--force" in res.stderr
    assert "events" in names(ok(tody("datasource", "ls", "--format", "json")), "datasources")

    res = tody("datasource", "rm", "events", "--force", input="n\n")
    assert res.exit_code == 1 and "evens read it and stop working" in res.stderr
    assert "events" in names(ok(tody("datasource", "ls", "--format", "json")), "datasources")

    res = ok(tody("datasource", "rm", "events", "--force", "--yes"))
    assert res.stdout == "Data Source 'events' removed\n"
    assert names(ok(tody("datasource", "ls", "--format", "json")), "datasources") == []

    api("POST", "/v0/datasources", data={"name": "lonely", "schema": "`n` UInt64"})
    ok(tody("datasource", "rm", "lonely", "-y"))
    res = tody("datasource", "rm", "lonely", "--yes")
    assert res.exit_code == 1 and "lonely" in res.stderr and "HTTP 404" in res.stderr


def test_pipe_rm_asks_first(tody, events):
    res = tody("pipe", "rm", "evens", input="n\n")
    assert res.exit_code == 1 and "Remove pipe 'evens'?" in res.stderr
    assert names(ok(tody("pipe", "ls", "--format", "json")), "pipes") == ["evens"]
    ok(tody("pipe", "rm", "evens", input="y\n"))
    assert names(ok(tody("pipe", "ls", "--format", "json")), "pipes") == []


# -- jobs --------------------------------------------------------------------------------------------


def test_job_show_and_cancel(tody, api, file_server, private_urls):
    api("POST", "/v0/datasources", data={"name": "slow", "schema": "`n` UInt64"})
    started = api(
        "POST", "/v0/datasources", data={"name": "slow", "mode": "append", "url": file_server.url("slow/400")}
    )
    job_id = started["job_id"]
    deadline = time.monotonic() + 10
    while api("GET", f"/v0/jobs/{job_id}")["status"] != "working" and time.monotonic() < deadline:
        time.sleep(0.05)

    shown = orjson.loads(ok(tody("job", "show", job_id, "--format", "json")).stdout)
    assert shown["id"] == job_id and shown["kind"] == "import" and shown["status"] == "working"
    table = ok(tody("job", "show", job_id)).stdout
    assert job_id in table and "import" in table and "working" in table and "slow/400" in table

    res = tody("job", "cancel", job_id, input="n\n")
    assert res.exit_code == 1 and f"Cancel import job {job_id} (slow), now working?" in res.stderr
    assert api("GET", f"/v0/jobs/{job_id}")["status"] == "working"
    res = ok(tody("job", "cancel", job_id, "--yes"))
    assert res.stdout in (f"Job {job_id} is cancelling\n", f"Job {job_id} is cancelled\n")
    deadline = time.monotonic() + 10
    while api("GET", f"/v0/jobs/{job_id}")["status"] != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert orjson.loads(ok(tody("job", "show", job_id, "--format", "json")).stdout)["status"] == "cancelled"

    res = tody("job", "cancel", job_id, "--yes")
    assert res.exit_code == 1 and "is cancelled and cannot be cancelled" in res.stderr
    res = tody("job", "show", "no-such-job")
    assert res.exit_code == 1 and "HTTP 404" in res.stderr


def test_waiting_for_a_failing_job_exits_1_with_its_error(tody, api, file_server, private_urls):
    api("POST", "/v0/datasources", data={"name": "ev", "schema": "`n` UInt64"})
    res = tody("datasource", "append", "ev", file_server.url("status/500"), "--wait")
    assert res.exit_code == 1 and "ended error" in res.stderr and "500" in res.stderr
    assert "import job" in res.stderr  # the progress bar's last state


# -- queries -----------------------------------------------------------------------------------------


def test_sql_formats(tody, events):
    q = "SELECT n, tag FROM events WHERE n < 2 ORDER BY n"
    assert orjson.loads(ok(tody("sql", q)).stdout)["data"] == [
        {"n": 0, "tag": "even"},
        {"n": 1, "tag": "odd"},
    ]
    assert ok(tody("sql", q, "--format", "csv")).stdout == '"n","tag"\n0,"even"\n1,"odd"\n'
    ndjson = ok(tody("sql", q, "--format", "ndjson")).stdout
    assert [orjson.loads(line) for line in ndjson.splitlines()] == [
        {"n": 0, "tag": "even"},
        {"n": 1, "tag": "odd"},
    ]
    assert ok(tody("sql", q + ";", "--format", "tsv")).stdout == "n\ttag\n0\teven\n1\todd\n"
    res = ok(tody("sql", q, "--format", "table"))
    lines = res.stdout.splitlines()
    assert any("n" in line and "tag" in line for line in lines[:3])
    assert any("0" in line and "even" in line for line in lines) and "2 row(s)" in res.stderr
    # a FORMAT clause of the query wins over --format
    assert ok(tody("sql", "SELECT 1 AS one FORMAT CSV", "--format", "table")).stdout == "1\n"
    assert ok(tody("sql", "SELECT 'a format b' AS s", "--format", "csv")).stdout == '"s"\n"a format b"\n'


def test_pipe_data_params_and_formats(tody, events):
    res = ok(tody("pipe", "data", "evens", "--below", "5"))
    assert [r["n"] for r in orjson.loads(res.stdout)["data"]] == [0, 2, 4]
    res = ok(tody("pipe", "data", "evens", "--param", "below=3", "--format", "csv"))
    assert res.stdout == '"n","tag"\n0,"even"\n2,"even"\n'
    res = ok(tody("pipe", "data", "evens", "--below=3", "--format", "ndjson"))
    assert [orjson.loads(line)["n"] for line in res.stdout.splitlines()] == [0, 2]
    res = ok(tody("pipe", "data", "evens", "--param", "below=5", "--format", "table"))
    assert "even" in res.stdout and "3 row(s)" in res.stderr
    res = tody("pipe", "data", "evens", "--param", "below")
    assert res.exit_code == 2 and "KEY=VALUE" in res.stderr
    res = tody("pipe", "data", "evens", "--below")
    assert res.exit_code == 2 and "--below has no value" in res.stderr


# -- failures and help -------------------------------------------------------------------------------


def test_failures_exit_1_with_the_servers_message(tody, events):
    for args in (
        ("datasource", "truncate", "missing", "--yes"),
        ("datasource", "delete", "missing", "--sql-condition", "n = 1", "--yes"),
        ("pipe", "data", "missing"),
        ("pipe", "rm", "missing", "--yes"),
    ):
        res = tody(*args)
        assert res.exit_code == 1, (args, res.output)
        assert res.stderr.startswith("Error: ") and "missing" in res.stderr and "HTTP 404" in res.stderr
        assert res.stdout == ""
    res = tody("datasource", "delete", "events", "--sql-condition", "no_such_column = 1", "--yes")
    assert res.exit_code == 1 and "no_such_column" in res.stderr and "HTTP 400" in res.stderr
    res = tody("sql", "SELECT * FROM nowhere", "--format", "table")
    assert res.exit_code == 1 and "nowhere" in res.stderr and res.stdout == ""


def _commands(group: click.Group, prefix: tuple[str, ...]):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize(
    "path",
    [
        ("sql",),
        *(p for group in ("datasource", "pipe", "job") for p in _commands(cli.commands[group], (group,))),
    ],
    ids=" ".join,
)
def test_every_everyday_command_has_help_with_an_example(live_server, path):
    res = ok(run(live_server, *path, "--help"))
    assert f"tody {' '.join(path)} " in res.stdout, res.stdout
