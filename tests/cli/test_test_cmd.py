"""`tody test init|run|update` against a real server: endpoint tests as YAML files (Forward and Classic)."""

from __future__ import annotations

import httpx
import pytest
import yaml
from cli_helpers import ok, run

from tody.cli.endpoint_tests.cases import compare
from tody.cli.endpoint_tests.yaml_edit import update_text

PIPE_SQL = (
    "%\nSELECT path, sum(hits) AS total FROM visits WHERE hits >= {{UInt64(min_hits, 0)}} "
    "GROUP BY path ORDER BY total DESC, path LIMIT {{Int32(limit, 10)}}"
)


def _send(live_server, token, *rows):
    body = "".join(f'{{"path": "{p}", "hits": {h}}}\n' for p, h in rows)
    res = httpx.post(
        f"{live_server}/v0/events",
        params={"name": "visits", "wait": "true"},
        content=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert res.status_code == 200, res.text


@pytest.fixture
def project(live_server, workspace_token, tmp_path):
    """A data source with rows and a template endpoint `top_paths`; yields the project folder."""
    headers = {"Authorization": f"Bearer {workspace_token}"}
    res = httpx.post(
        f"{live_server}/v0/datasources",
        data={"name": "visits", "schema": "`path` String, `hits` UInt64"},
        headers=headers,
    )
    assert res.status_code == 200, res.text
    _send(live_server, workspace_token, ("home", 10), ("pa", 3), ("pb", 1))
    pipe = {"name": "top_paths", "nodes": [{"name": "top", "type": "endpoint", "sql": PIPE_SQL}]}
    res = httpx.post(f"{live_server}/v0/pipes", json=pipe, headers=headers)
    assert res.status_code == 200, res.text
    return tmp_path


def tody(live_server, token, folder, *args):
    return run(live_server, "test", *args, "--folder", str(folder), token=token)


def test_init_run_fail_update_run(live_server, workspace_token, project):
    res = ok(tody(live_server, workspace_token, project, "init"))
    assert "Wrote tests/top_paths.yaml: 3 row(s)" in res.output
    path = project / "tests" / "top_paths.yaml"
    [test] = yaml.safe_load(path.read_text())
    assert test["name"] == "top_paths_default_params"
    assert test["expected_http_status"] == 200 and test["parameters"] == ""
    assert test["expected_result"] == (
        '{"path":"home","total":10}\n{"path":"pa","total":3}\n{"path":"pb","total":1}\n'
    )
    # a second test with parameters and comments, which update must keep
    path.write_text(
        "# endpoint tests for top_paths\n" + path.read_text() + "\n- name: top_two  # the two busiest\n"
        "  description: limit=2\n"
        "  parameters: limit=2&min_hits=2\n"
        "  expected_result: |\n"
        '    {"path":"home","total":10}\n'
        '    {"path":"pa","total":3}\n'
    )
    res = ok(tody(live_server, workspace_token, project, "run"))
    assert "PASS" in res.output and "top_paths.yaml::top_two" in res.output
    assert "2 passed" in res.output

    # init again does not overwrite
    res = ok(tody(live_server, workspace_token, project, "init", "top_paths"))
    assert "exists: skipped" in res.output

    _send(live_server, workspace_token, ("pa", 20), ("pc", 2))
    res = tody(live_server, workspace_token, project, "run")
    assert res.exit_code == 1, res.output
    assert "FAIL  tests/top_paths.yaml::top_paths_default_params" in res.output
    assert "--- expected" in res.output and "+++ actual" in res.output
    assert '-{"path":"pa","total":3}' in res.output
    assert '+{"path":"pa","total":23}' in res.output
    assert '+{"path":"pc","total":2}' in res.output
    assert "2 failed" in res.output

    res = ok(tody(live_server, workspace_token, project, "update"))
    assert "top_paths_default_params, top_two" in res.output and "re-written whole" not in res.output
    text = path.read_text()
    assert text.startswith("# endpoint tests for top_paths\n")
    assert (
        "- name: top_two  # the two busiest\n  description: limit=2\n  parameters: limit=2&min_hits=2\n"
        in text
    )
    [first, second] = yaml.safe_load(text)
    assert second["expected_result"] == '{"path":"pa","total":23}\n{"path":"home","total":10}\n'
    assert first["expected_result"].splitlines()[-1] == '{"path":"pb","total":1}'
    res = ok(tody(live_server, workspace_token, project, "run", "top_paths"))
    assert "2 passed" in res.output and "FAIL" not in res.output
    res = ok(tody(live_server, workspace_token, project, "update", "tests/top_paths.yaml"))
    assert "up to date" in res.output


def test_expected_http_status(live_server, workspace_token, project):
    tests = project / "tests"
    tests.mkdir()
    (tests / "top_paths.yaml").write_text(
        "- name: bad_limit_is_a_400\n"
        "  parameters: limit=abc\n"
        "  expected_http_status: 400\n"
        "- name: bad_limit_expected_200\n"
        "  parameters: limit=abc\n"
        "  expected_result: ''\n"
    )
    res = tody(live_server, workspace_token, project, "run")
    assert res.exit_code == 1, res.output
    assert "PASS  tests/top_paths.yaml::bad_limit_is_a_400" in res.output
    assert "FAIL  tests/top_paths.yaml::bad_limit_expected_200" in res.output
    assert "HTTP 400, expected 200" in res.output and "limit" in res.output

    # update records the status it gets (and keeps an error's body out unless it was asked for)
    ok(tody(live_server, workspace_token, project, "update"))
    first, second = yaml.safe_load((tests / "top_paths.yaml").read_text())
    assert first == {"name": "bad_limit_is_a_400", "parameters": "limit=abc", "expected_http_status": 400}
    assert second["expected_http_status"] == 400 and "limit" in second["expected_result"]
    ok(tody(live_server, workspace_token, project, "run"))


def test_parallel_runs_keep_file_order(live_server, workspace_token, project):
    tests = project / "tests"
    tests.mkdir()
    lines = []
    for limit in range(1, 9):
        rows = [("home", 10), ("pa", 3), ("pb", 1)][:limit]
        expected = "".join(f'    {{"path":"{p}","total":{h}}}\n' for p, h in rows)
        lines.append(f"- name: limit_{limit}\n  parameters: limit={limit}\n  expected_result: |\n{expected}")
    (tests / "top_paths.yaml").write_text("".join(lines))
    res = ok(tody(live_server, workspace_token, project, "run", "-c", "4"))
    order = [line.split("::")[1] for line in res.output.splitlines() if line.startswith("PASS")]
    assert order == [f"limit_{n}" for n in range(1, 9)]
    assert "8 passed" in res.output


def test_classic_shape_and_comparison_options(live_server, workspace_token, project):
    tests = project / "tests"
    (tests / "nested").mkdir(parents=True)
    (tests / "regression.yaml").write_text("not: a test file\n")  # skipped, as Classic does
    (tests / "nested" / "checks.yml").write_text(
        "- no_empty_paths:\n"
        "    sql: SELECT * FROM visits WHERE path = ''\n"
        "    max_time: 30\n"
        "- no_big_paths:\n"
        "    pipe:\n"
        "      name: top_paths\n"
        "      params: {min_hits: 2}\n"
        "    sql: SELECT * FROM _ WHERE total > 5\n"
        "- compared_any_order:\n"
        "    pipe: top_paths\n"
        "    params: {limit: 2}\n"
        "    ignore_order: true\n"
        "    expected_result: |\n"
        '      {"total": "3", "path": "pa"}\n'
        '      {"path": "home", "total": 10.0}\n'
        "- broken: {}\n"
    )
    res = tody(live_server, workspace_token, project, "run")
    assert res.exit_code == 1, res.output
    assert "PASS  tests/nested/checks.yml::no_empty_paths" in res.output
    assert "FAIL  tests/nested/checks.yml::no_big_paths" in res.output
    assert '+{"path": "home", "total": 10}' in res.output
    assert "PASS  tests/nested/checks.yml::compared_any_order" in res.output
    assert "ERROR tests/nested/checks.yml::broken" in res.output and "'sql' or 'pipe'" in res.output
    assert "regression" not in res.output

    res = tody(live_server, workspace_token, project, "run", "--fail")
    assert "no_empty_paths" not in res.output and "no_big_paths" in res.output

    res = tody(live_server, workspace_token, project, "run", "missing")
    assert res.exit_code == 2 and "No test file 'missing'" in res.output


def test_compare_numbers_as_numbers_and_order():
    assert compare('{"a":1,"b":"x"}\n', '{"b":"x","a":1.0}\n', False) is None
    assert compare('{"a":"18446744073709551615"}', '{"a":18446744073709551615}', False) is None
    assert compare('{"a":18446744073709551614}', '{"a":18446744073709551615}', False) is not None
    assert compare('{"a":"1"}\n{"a":2}', '{"a":2}\n{"a":1}', True) is None
    diff = compare('{"a":1}\n{"a":2}', '{"a":2}\n{"a":1}', False)
    assert diff[:2] == ["--- expected", "+++ actual"]
    assert compare("", "\n", False) is None
    assert compare('{"a":"x"}', '{"a":1}', False) is not None


def test_update_keeps_layout_and_falls_back_for_flow_style():
    text = (
        "# top\n"
        "- name: a\n"
        "  expected_result: '' # was empty\n"
        "\n"
        "- name: b  # keep\n"
        "  parameters: x=1\n"
        "- name: d\n"
        "  expected_result: |\n"
        '    {"x":1}'
    )
    shapes = dict.fromkeys(range(3), "forward")
    new, in_place = update_text(
        text,
        {0: {"expected_result": '{"a":1}\n'}, 1: {"expected_http_status": 400}, 2: {"expected_result": ""}},
        shapes,
    )
    assert in_place
    assert new == (
        "# top\n"
        "- name: a\n"
        "  expected_result: | # was empty\n"
        '    {"a":1}\n'
        "\n"
        "- name: b  # keep\n"
        "  parameters: x=1\n"
        "  expected_http_status: 400\n"
        "- name: d\n"
        "  expected_result: ''\n"
    )
    new, in_place = update_text(
        "- {name: c, expected_result: ''}\n", {0: {"expected_result": "{}\n"}}, shapes
    )
    assert not in_place and yaml.safe_load(new) == [{"name": "c", "expected_result": "{}\n"}]


def test_project_folder_is_found_from_a_subfolder(live_server, workspace_token, project, monkeypatch):
    (project / ".tinyb").write_text(f'{{"host": "{live_server}", "token": "{workspace_token}"}}\n')
    (project / "pipes").mkdir()
    (project / "pipes" / "top_paths.pipe").write_text("NODE n\nSQL >\n    SELECT 1\n")
    monkeypatch.chdir(project / "pipes")
    res = ok(run(live_server, "test", "init", token=workspace_token))  # the project's .pipe files only
    assert "Wrote tests/top_paths.yaml" in res.output and "1 test file(s) written" in res.output
    res = ok(run(live_server, "test", "run", token=workspace_token))
    assert "PASS  tests/top_paths.yaml::top_paths_default_params" in res.output
