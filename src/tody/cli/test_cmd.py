"""`tody test run|init|update`: endpoint tests as YAML files in the project's tests/ folder.

Two shapes are accepted, and both may appear in one project (each file is a YAML list):

* **Forward** (`tb test` of Tinybird Forward; `tests/<pipe>.yaml`, the pipe is the file's name)::

      - name: top_pages_es                    # required
        description: Spanish pages only       # optional
        parameters: country=ES&limit=2        # a query string (or a mapping: {country: ES, limit: 2})
        expected_http_status: 200             # optional, 200 by default
        expected_result: |                    # NDJSON, one row a line; '' means no rows; absent: not checked
          {"path":"/","hits":10}
          {"path":"/a","hits":3}

  tody also reads `pipe: NAME` (test another pipe than the file's name) and `ignore_order: true`
  (compare the rows as a multiset).

* **Classic** (`tb test` of tinybird-cli; any `tests/**/*.y*ml` but `regression.yaml`): single-key
  mappings, `- test_name: {...}`::

      - no_negative_quantities:
          sql: SELECT * FROM events WHERE qty < 0     # passes when it returns no rows
          max_time: 0.5                               # optional: "pass over time" above (seconds)
          max_bytes_read: 1000000                     # optional: "pass over read bytes" above
      - no_big_users:
          pipe: {name: top_users, params: {event: buy}}
          sql: SELECT * FROM _ WHERE hits > 100       # optional, run over the pipe's result (q=)

  As Classic does, such a test calls `/v0/sql` (`SELECT * FROM (<sql>) LIMIT 20 FORMAT JSON`) or
  `/v0/pipes/<name>.json` and passes when no rows come back. With `expected_result` and/or
  `expected_http_status` (and `pipe: NAME` + `params:` also accepted) it is compared as a Forward test.

Compared tests call `GET /v0/pipes/<pipe>.ndjson?<parameters>`: the status must match, then the rows,
in order unless `ignore_order`; numbers compare as numbers (`1` = `1.0` = `"1"`), object keys in any
order. `update` rewrites `expected_result` (and `expected_http_status` when it is there or not 200)
from the server's answers, editing the file's text in place so names, parameters, comments and order
stay as they were.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import yaml

from tody.cli.client import Client, client_options
from tody.cli.endpoint_tests.cases import TESTS_DIR, find_files, load_file, ndjson_lines, query_params
from tody.cli.endpoint_tests.runner import Runner, label, print_outcome, run_cases
from tody.cli.endpoint_tests.yaml_edit import mapping_of, render_tests, update_text
from tody.cli.project.layout import folder_option


def project_root(folder: Path | None) -> Path:
    """`--folder`, else the nearest folder with a `.tinyb`, else the current one (as `tody push`)."""
    from tody.cli.project.layout import find_root

    return find_root(folder)


FOLDER_OPTION = folder_option(
    "The project folder, whose tests/ holds the test files (default: the nearest folder with a "
    ".tinyb, else the current one)."
)


@click.group()
def test() -> None:
    """Endpoint tests: YAML files in tests/ that call pipes and compare the answers.

    \b
    tody test init                      # tests/<pipe>.yaml for each endpoint, from its current answer
    tody test run                       # every tests/**/*.yaml (not regression.yaml); exit 1 on failure
    tody test run tests/top.yaml -c 4   # some files, 4 tests at a time
    tody test update top                # rewrite expected_result from the server's answers

    \b
    Forward shape (tests/<pipe>.yaml):
      - name: top_es
        parameters: country=ES&limit=2
        expected_http_status: 200
        expected_result: |
          {"path":"/","hits":10}
    Classic shape (tinybird-cli): - test_name: {sql: …} or {pipe: {name: …, params: {…}}}, passing
    when no rows come back (or compared, with expected_result / expected_http_status).
    """


@test.command("run")
@click.argument("files", nargs=-1)
@click.option(
    "-c", "--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Tests at a time."
)
@click.option("--fail", "only_fail", is_flag=True, help="Print only the tests that did not pass.")
@FOLDER_OPTION
@client_options
def run(
    files: tuple[str, ...],
    concurrency: int,
    only_fail: bool,
    folder: Path | None,
    host: str,
    token: str | None,
) -> None:
    """Run the tests in FILES (files, folders or pipe names; default: every file in tests/).

    Prints PASS, FAIL (with a diff of expected and actual rows) or ERROR per test; exits 1 unless all pass.
    """
    folder = project_root(folder)
    paths = find_files(folder, files)
    if not paths:
        raise click.ClickException(
            f"No test files in {folder / TESTS_DIR} (create some with `tody test init`)"
        )
    cases = [case for path in paths for case in load_file(path)]
    runner = Runner(Client(host, token))
    counts = {"PASS": 0, "FAIL": 0, "ERROR": 0}
    try:
        for outcome in run_cases(runner, cases, concurrency):
            counts[outcome.status] += 1
            if not (only_fail and outcome.status == "PASS"):
                print_outcome(outcome, folder)
    finally:
        runner.close()
    summary = f"{counts['PASS']} passed"
    summary += f", {counts['FAIL']} failed" if counts["FAIL"] else ""
    summary += f", {counts['ERROR']} error(s)" if counts["ERROR"] else ""
    failed = counts["FAIL"] + counts["ERROR"]
    click.secho(
        f"\n{summary} ({len(cases)} test(s) in {len(paths)} file(s))",
        fg="red" if failed else "green",
        bold=True,
    )
    if failed:
        raise SystemExit(1)


@test.command("init")
@click.argument("pipes", nargs=-1)
@click.option("--force", is_flag=True, help="Overwrite test files that exist.")
@FOLDER_OPTION
@client_options
def init(pipes: tuple[str, ...], force: bool, folder: Path | None, host: str, token: str | None) -> None:
    """Write tests/<pipe>.yaml for each of PIPES (names or .pipe files; default: every endpoint of the
    workspace, or those of the project's .pipe files): one test with the default parameters whose
    expected_result is the endpoint's current answer.
    """
    folder = project_root(folder)
    from tody.cli.project.layout import project_files

    client = Client(host, token)
    names = [Path(p).name.removesuffix(".pipe") for p in pipes]
    if not names:
        endpoints = [p["name"] for p in client.json("GET", "/v0/pipes")["pipes"] if p.get("endpoint")]
        local = {p.name.split(".")[0] for p in project_files(folder) if p.suffix == ".pipe"}
        names = [n for n in endpoints if n in local] if local else endpoints
        if not names:
            raise click.ClickException("No endpoints to write tests for (publish a pipe first)")
    runner = Runner(client)
    written = 0
    try:
        for name in names:
            path = folder / TESTS_DIR / f"{name}.yaml"
            if path.exists() and not force:
                click.echo(f"{label(folder, path)} exists: skipped (--force overwrites it)")
                continue
            status, body = runner.pipe_ndjson(name, [])
            if status == 404:
                raise click.ClickException(f"Pipe '{name}' has no endpoint on the server: {body.strip()}")
            test = {
                "name": f"{name}_default_params",
                "description": "Default parameters; expected_result recorded by `tody test init`",
                "expected_http_status": status,
                "parameters": "",
                "expected_result": body,
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_tests([test]), encoding="utf-8")
            written += 1
            rows = len(ndjson_lines(body))
            warn = "" if status == 200 else f"  (HTTP {status}: the default parameters fail)"
            click.echo(f"Wrote {label(folder, path)}: {rows} row(s){warn}")
    finally:
        runner.close()
    click.echo(f"{written} test file(s) written")


@test.command("update")
@click.argument("files", nargs=-1)
@click.option(
    "-c", "--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Tests at a time."
)
@FOLDER_OPTION
@client_options
def update(
    files: tuple[str, ...], concurrency: int, folder: Path | None, host: str, token: str | None
) -> None:
    """Rewrite expected_result (and expected_http_status) of the tests in FILES from the server's current
    answers (default: every file in tests/). Names, parameters, comments and order are kept.
    """
    folder = project_root(folder)
    paths = find_files(folder, files)
    if not paths:
        raise click.ClickException(f"No test files in {folder / TESTS_DIR}")
    runner = Runner(Client(host, token))
    try:
        for path in paths:
            cases = load_file(path)
            todo = [c for c in cases if c.compare and not c.error]
            for c in cases:
                if c.error:
                    click.echo(f"{label(folder, path)}::{c.name}: skipped ({c.error})")
                elif not c.compare:
                    click.echo(f"{label(folder, path)}::{c.name}: skipped (a Classic no-rows check)")
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                answers = list(pool.map(lambda c: runner.pipe_ndjson(c.pipe, query_params(c)), todo))
            updates: dict[int, dict[str, Any]] = {}
            changed = []
            original = yaml.safe_load(path.read_text(encoding="utf-8"))
            for case, (status, body) in zip(todo, answers, strict=True):
                keys: dict[str, Any] = {}
                mapping = mapping_of(original[case.index], case.shape)
                if "expected_http_status" in mapping or status != 200:
                    keys["expected_http_status"] = status
                if status == 200 or "expected_result" in mapping:  # an error's text only if it was kept
                    keys["expected_result"] = body
                if any(mapping.get(k) != v for k, v in keys.items()):
                    changed.append(case.name)
                    updates[case.index] = keys
            if updates:
                text = path.read_text(encoding="utf-8")
                shapes = {c.index: c.shape for c in cases}
                new_text, in_place = update_text(text, updates, shapes)
                path.write_text(new_text, encoding="utf-8")
                how = "" if in_place else " (re-written whole: its comments and layout were not kept)"
                click.echo(f"Updated {label(folder, path)}: {', '.join(changed)}{how}")
            else:
                click.echo(f"{label(folder, path)}: up to date")
    finally:
        runner.close()
