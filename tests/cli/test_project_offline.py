"""`tody check`, `tody fmt` and `tody init`: offline, no server."""

from __future__ import annotations

import os
import stat

import orjson
from click.testing import CliRunner
from project_sample import write_project

from tody.cli.main import cli
from tody.cli.project.graph import push_order
from tody.cli.project.layout import load_project


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_accepts_the_sample_project(tmp_path):
    root = write_project(tmp_path)
    res = run("check", "--folder", str(root))
    assert res.exit_code == 0, res.output
    assert "7 file(s) OK" in res.output


def test_check_reports_bad_references_and_templates_with_file_and_line(tmp_path):
    root = write_project(tmp_path)
    (root / "pipes" / "broken.pipe").write_text(
        "NODE first\n"
        "SQL >\n"
        "    SELECT * FROM no_such_table\n"
        "\n"
        "NODE second\n"
        "SQL >\n"
        "    %\n"
        "    SELECT * FROM first\n"
        "    WHERE x = {{ Int32(x, 1 }}\n"
        "\n"
        "NODE third\n"
        "SQL >\n"
        "    SELECT * FROM fourth, tinybird.pipe_stats_rt, other_ws.shared_ds, events_quarantine\n"
        "\n"
        "NODE fourth\n"
        "SQL >\n"
        "    SELECT 1\n"
        "\n"
        "TYPE copy\n"
        "TARGET_DATASOURCE missing_target\n"
    )
    res = run("check", "--folder", str(root))
    assert res.exit_code == 1
    out = res.output
    assert "pipes/broken.pipe:3: node 'first' reads 'no_such_table', which is not a data source" in out
    assert "pipes/broken.pipe:9: node 'second': Template syntax error at line 3: '(' is never closed" in out
    assert "pipes/broken.pipe:13: node 'third' reads node 'fourth', which comes after it" in out
    assert "tinybird" not in out and "other_ws" not in out and "events_quarantine" not in out
    assert "TARGET_DATASOURCE missing_target is not a data source of the project" in out
    assert "4 problem(s)" in out

    # only the given files are reported, still checked against the whole project
    res = run("check", "--folder", str(root), str(root / "endpoints" / "top_users.pipe"))
    assert res.exit_code == 0, res.output
    assert "1 file(s) OK" in res.output
    res = run("check", "--folder", str(root), str(root / "pipes" / "broken.pipe"))
    assert res.exit_code == 1 and "4 problem(s) in 1 file(s)" in res.output


def test_check_reports_syntax_errors_and_duplicate_names(tmp_path):
    root = write_project(tmp_path)
    (root / "datasources" / "bad.datasource").write_text(
        "SCHEMA >\n    `a` String\n\nENGINE_SORTING_KEYS a\n"
    )
    (root / "pipes" / "events.pipe").write_text("NODE n\nSQL >\n    SELECT 1\n")
    res = run("check", "--folder", str(root))
    assert res.exit_code == 1
    assert "datasources/bad.datasource:4: unknown engine instruction ENGINE_SORTING_KEYS" in res.output
    assert "pipes/events.pipe: the name 'events' is also used by datasources/events.datasource" in res.output


def test_push_order_puts_each_resource_after_what_it_reads(tmp_path):
    root = write_project(tmp_path)
    order = [r.name for r in push_order(load_project(root).resources)]
    assert order[:3] == ["events", "events_by_day", "snapshot"]
    assert order.index("top_users") < order.index("a_summary")
    (root / "pipes" / "loop_a.pipe").write_text("NODE n\nSQL >\n    SELECT * FROM loop_b\n")
    (root / "pipes" / "loop_b.pipe").write_text("NODE n\nSQL >\n    SELECT * FROM loop_a\n")
    try:
        push_order(load_project(root).resources)
    except ValueError as exc:
        assert "loop_a, loop_b" in str(exc)
    else:
        raise AssertionError("a cycle must be refused")


def test_fmt_check_diff_and_rewrite(tmp_path):
    root = write_project(tmp_path)
    res = run("fmt", "--check", "--folder", str(root))
    assert res.exit_code == 0, res.output

    messy = root / "pipes" / "messy.pipe"
    messy.write_text("NODE   n\nSQL >\n        SELECT 1\nTYPE ENDPOINT\n")
    res = run("fmt", "--check", "--folder", str(root))
    assert res.exit_code == 1 and "would reformat pipes/messy.pipe" in res.output
    res = run("fmt", "--diff", str(messy))
    assert res.exit_code == 0 and "-        SELECT 1" in res.output and "+    SELECT 1" in res.output
    assert messy.read_text().startswith("NODE   n")  # --diff writes nothing

    res = run("fmt", str(messy))
    assert res.exit_code == 0 and "reformatted" in res.output
    assert messy.read_text() == "NODE n\nSQL >\n    SELECT 1\n\nTYPE ENDPOINT\n"
    assert run("fmt", "--check", str(messy)).exit_code == 0

    commented = root / "pipes" / "commented.pipe"
    commented.write_text("# keep me\nNODE  n\nSQL >\n    SELECT 1\n")
    res = run("fmt", str(commented))
    assert res.exit_code == 0 and "comments" in res.output
    assert commented.read_text().startswith("# keep me")

    (root / "pipes" / "broken.pipe").write_text("NODE n\n")
    assert run("fmt", "--check", "--folder", str(root)).exit_code == 1


def test_init_scaffolds_and_is_idempotent(tmp_path):
    target = tmp_path / "new"
    res = run("init", str(target), "--host", "http://127.0.0.1:9")
    assert res.exit_code == 0, res.output
    for name in ("datasources", "pipes", "fixtures", "tests"):
        assert (target / name).is_dir()
    config = orjson.loads((target / ".tinyb").read_bytes())
    assert config["host"] == "http://127.0.0.1:9" and "token" not in config
    assert stat.S_IMODE(os.stat(target / ".tinyb").st_mode) == 0o600
    assert (target / ".gitignore").read_text() == ".tinyb\n"

    (target / ".tinyb").write_text('{"host": "http://kept"}')
    (target / "pipes" / "x.pipe").write_text("NODE n\nSQL >\n    SELECT 1\n")
    res = run("init", str(target))
    assert res.exit_code == 0, res.output
    assert "created" not in res.output
    assert (target / ".tinyb").read_text() == '{"host": "http://kept"}'
    assert (target / "pipes" / "x.pipe").is_file()


def test_init_with_a_token_saves_the_workspace(live_server, workspace_token, workspace, tmp_path):
    res = run("init", str(tmp_path / "p"), "--host", live_server, "--token", workspace_token)
    assert res.exit_code == 0, res.output
    config = orjson.loads((tmp_path / "p" / ".tinyb").read_bytes())
    assert config["token"] == workspace_token and config["id"] == workspace.id
    assert config["tokens"] == {live_server: workspace_token}


def test_environment_variables_in_datafiles_are_substituted_as_tb_does(tmp_path, monkeypatch):
    (tmp_path / "pipes").mkdir()
    (tmp_path / "datasources").mkdir()
    (tmp_path / "datasources" / "events.datasource").write_text("SCHEMA >\n    `id` UInt64 `json:$.id`\n")
    (tmp_path / "pipes" / "p.pipe").write_text(
        "NODE n\nSQL >\n    SELECT id FROM ${SOURCE} WHERE id > $MIN_ID\n"
    )
    monkeypatch.setenv("SOURCE", "events")
    monkeypatch.setenv("MIN_ID", "10")
    project = load_project(tmp_path)
    by_name = {r.name: r for r in project.resources}
    assert "FROM events WHERE id > 10" in by_name["p"].text
    assert "`json:$.id`" in by_name["events"].text  # not a variable: left as written
    monkeypatch.delenv("MIN_ID")
    assert "$MIN_ID" in {r.name: r for r in load_project(tmp_path).resources}["p"].text
