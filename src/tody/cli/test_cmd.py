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

import difflib
import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import click
import httpx
import yaml

from tody.cli.client import Client, client_options

TESTS_DIR = "tests"
SKIPPED = {"regression.yaml"}  # Classic's regression tests are another tool's


class TestFileError(click.ClickException):
    pass


# ----------------------------------------------------------------------------------------------------
# Reading test files


@dataclass
class Case:
    file: Path
    index: int  # position in the file's list
    name: str
    shape: str  # "forward" or "classic"
    compare: bool  # compare status/rows (else Classic's "passes when no rows")
    pipe: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)
    sql: str | None = None
    expected_result: str | None = None
    expected_status: int = 200
    ignore_order: bool = False
    max_time: float | None = None
    max_bytes_read: int | None = None
    error: str | None = None  # the definition is wrong: the test is an ERROR


def _params(value: Any, where: str) -> list[tuple[str, str]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return parse_qsl(value.strip().lstrip("?"), keep_blank_values=True)
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, v in value.items():
            for one in v if isinstance(v, list) else [v]:
                pairs.append((str(key), _text(one)))
        return pairs
    raise ValueError(f"{where}: parameters must be a query string (a=1&b=2) or a mapping")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _expected(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # rows written as YAML mappings
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in value)
    raise ValueError("expected_result must be NDJSON text (one JSON row a line)")


def _status(value: Any) -> int:
    if value is None:
        return 200
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected_http_status must be a number, not {value!r}") from None


def _forward(path: Path, index: int, item: dict) -> Case:
    name = str(item.get("name") or f"test_{index + 1}")
    case = Case(path, index, name, "forward", compare=True, pipe=str(item.get("pipe") or path.stem))
    try:
        case.params = _params(item.get("parameters", item.get("params")), name)
        case.expected_result = _expected(item.get("expected_result"))
        case.expected_status = _status(item.get("expected_http_status"))
        case.ignore_order = bool(item.get("ignore_order", False))
    except ValueError as exc:
        case.error = str(exc)
    return case


def _classic(path: Path, index: int, name: str, props: Any) -> Case:
    case = Case(path, index, str(name), "classic", compare=False)
    if not isinstance(props, dict):
        case.error = "a Classic test is `- name: {sql: …}` or `- name: {pipe: {name: …, params: …}}`"
        return case
    try:
        pipe = props.get("pipe")
        params = props.get("params")
        if isinstance(pipe, dict):
            params = pipe.get("params", params)
            pipe = pipe.get("name")
        case.pipe = str(pipe) if pipe else None
        case.params = _params(params if params is not None else props.get("parameters"), case.name)
        case.sql = props.get("sql") or None
        case.max_time = props.get("max_time")
        case.max_bytes_read = props.get("max_bytes_read")
        case.compare = "expected_result" in props or "expected_http_status" in props
        case.expected_result = _expected(props.get("expected_result"))
        case.expected_status = _status(props.get("expected_http_status"))
        case.ignore_order = bool(props.get("ignore_order", False))
    except ValueError as exc:
        case.error = str(exc)
        return case
    if case.compare and not case.pipe:
        case.error = "expected_result and expected_http_status need a `pipe`"
    elif not case.sql and not case.pipe:
        case.error = "'sql' or 'pipe' attribute not found"
    return case


def load_file(path: Path) -> list[Case]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TestFileError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise TestFileError(f"{path}: {exc.strerror}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise TestFileError(f"{path}: a test file is a YAML list of tests (`- name: …`)")
    cases = []
    for index, item in enumerate(data):
        if isinstance(item, dict) and "name" in item and not isinstance(item["name"], dict):
            cases.append(_forward(path, index, item))
        elif isinstance(item, dict) and len(item) == 1:
            name, props = next(iter(item.items()))
            cases.append(_classic(path, index, name, props))
        else:
            case = Case(path, index, f"test_{index + 1}", "forward", compare=False)
            case.error = "a test is `- name: …` (Forward) or `- test_name: {…}` (Classic)"
            cases.append(case)
    return cases


def find_files(root: Path, args: tuple[str, ...]) -> list[Path]:
    """FILES as given (files, folders, or pipe names meaning tests/<name>.yaml); none: every test file."""
    if not args:
        return _yaml_under(root / TESTS_DIR)
    files: list[Path] = []
    for arg in args:
        path = Path(arg)
        candidates = [path, root / path] if not path.is_absolute() else [path]
        stem = path.name.removesuffix(".pipe")
        candidates += [root / TESTS_DIR / f"{stem}.yaml", root / TESTS_DIR / f"{stem}.yml"]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise click.UsageError(f"No test file '{arg}' (nor {TESTS_DIR}/{stem}.yaml)")
        files += _yaml_under(found) if found.is_dir() else [found]
    return list(dict.fromkeys(files))


def _yaml_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [*folder.rglob("*.yaml"), *folder.rglob("*.yml")]
    return sorted(p for p in found if p.name not in SKIPPED and p.is_file())


# ----------------------------------------------------------------------------------------------------
# Comparing rows

_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        try:
            return int(value)
        except ValueError:
            return float(value)
    return None


def same(a: Any, b: Any) -> bool:
    """Equal as values: numbers as numbers (a quoted number equals the number), mappings in any key order."""
    numeric_a = isinstance(a, int | float) and not isinstance(a, bool)
    numeric_b = isinstance(b, int | float) and not isinstance(b, bool)
    if numeric_a or numeric_b:
        x, y = _as_number(a), _as_number(b)
        if x is None or y is None:
            return False
        if isinstance(x, int) and isinstance(y, int):
            return x == y
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _row(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line  # not JSON: compared as text


def compare(expected: str, actual: str, ignore_order: bool) -> list[str] | None:
    """None when the NDJSON texts hold the same rows, else a unified diff (expected → actual)."""
    exp, act = _lines(expected), _lines(actual)
    exp_rows, act_rows = [_row(x) for x in exp], [_row(x) for x in act]
    shown_exp = list(exp)
    if ignore_order:
        unmatched = list(range(len(act)))
        for i, row in enumerate(exp_rows):
            j = next((j for j in unmatched if same(row, act_rows[j])), None)
            if j is not None:
                unmatched.remove(j)
                shown_exp[i] = act[j]  # equal as values: show them alike so only real changes stand out
        equal = not unmatched and len(exp) == len(act)
        shown_exp, shown_act = sorted(shown_exp), sorted(act)
    else:
        for i, row in enumerate(exp_rows[: len(act_rows)]):
            if same(row, act_rows[i]):
                shown_exp[i] = act[i]
        equal = len(exp) == len(act) and all(same(x, y) for x, y in zip(exp_rows, act_rows, strict=True))
        shown_act = act
    if equal:
        return None
    diff = list(difflib.unified_diff(shown_exp, shown_act, "expected", "actual", lineterm=""))
    return diff or ["(the same lines in another order)"]


# ----------------------------------------------------------------------------------------------------
# Running


@dataclass
class Outcome:
    case: Case
    status: str  # PASS, FAIL, ERROR
    lines: list[str] = field(default_factory=list)  # why, or the diff
    note: str = ""
    http_status: int | None = None
    body: str | None = None  # NDJSON answer (compared tests)


class Runner:
    def __init__(self, client: Client, timeout: float = 60.0):
        self.host = client.host
        self._http = httpx.Client(
            base_url=client.host, headers={"Authorization": f"Bearer {client.token}"}, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: list[tuple[str, str]]) -> httpx.Response:
        try:
            return self._http.get(path, params=params)
        except httpx.ConnectError:
            raise click.ClickException(
                f"Cannot reach the server at {self.host}: is `tody serve` running?"
            ) from None

    def pipe_ndjson(self, pipe: str, params: list[tuple[str, str]]) -> tuple[int, str]:
        res = self.get(f"/v0/pipes/{quote(pipe, safe='')}.ndjson", params)
        return res.status_code, normalize_body(res.text)

    def run(self, case: Case) -> Outcome:
        if case.error:
            return Outcome(case, "ERROR", [case.error])
        try:
            return self._compare(case) if case.compare else self._classic(case)
        except click.ClickException as exc:
            return Outcome(case, "ERROR", [exc.format_message()])
        except httpx.HTTPError as exc:
            return Outcome(case, "ERROR", [f"{type(exc).__name__}: {exc}"])

    def _compare(self, case: Case) -> Outcome:
        status, body = self.pipe_ndjson(case.pipe, _query(case))
        out = Outcome(case, "PASS", http_status=status, body=body)
        if status != case.expected_status:
            out.status = "FAIL"
            out.lines.append(f"HTTP {status}, expected {case.expected_status}")
            if status >= 400 or case.expected_status >= 400:
                out.lines += [f"  {line}" for line in _lines(body)[:5]]
            return out
        if case.expected_result is not None:
            diff = compare(case.expected_result, body, case.ignore_order)
            if diff is not None:
                out.status = "FAIL"
                out.lines = diff
        return out

    def _classic(self, case: Case) -> Outcome:
        if case.pipe:
            res = self.get(f"/v0/pipes/{quote(case.pipe, safe='')}.json", _query(case))
        else:
            res = self.get("/v0/sql", [("q", f"SELECT * FROM ({case.sql}) LIMIT 20 FORMAT JSON")])
        if res.status_code >= 400:
            return Outcome(case, "ERROR", [f"HTTP {res.status_code}: {_error(res)}"])
        body = res.json()
        rows = body.get("data") or []
        if rows:
            lines = [f"{len(rows)} row(s) returned, none expected:"]
            lines += [f"+{json.dumps(row, ensure_ascii=False)}" for row in rows[:20]]
            return Outcome(case, "FAIL", lines)
        stats = body.get("statistics") or {}
        notes = []
        if case.max_time is not None and stats.get("elapsed", 0) > case.max_time:
            notes.append(f"over time: {stats['elapsed']:.3f} s > {case.max_time} s")
        if case.max_bytes_read is not None and stats.get("bytes_read", 0) > case.max_bytes_read:
            notes.append(f"over read bytes: {stats['bytes_read']} > {case.max_bytes_read}")
        return Outcome(case, "PASS", note="; ".join(notes))


def _error(res: httpx.Response) -> str:
    try:
        return res.json().get("error") or res.text
    except ValueError:
        return res.text.strip()


def normalize_body(text: str) -> str:
    """The answer as NDJSON text the way a test file keeps it: one line a row, ending with a newline."""
    lines = _lines(text)
    return "".join(line + "\n" for line in lines)


COLORS = {"PASS": "green", "FAIL": "red", "ERROR": "yellow"}


def _label(root: Path, path: Path) -> str:
    for base in (Path.cwd(), root):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _print(outcome: Outcome, root: Path) -> None:
    case = outcome.case
    status = click.style(f"{outcome.status:<5}", fg=COLORS[outcome.status], bold=True)
    note = f"  ({outcome.note})" if outcome.note else ""
    click.echo(f"{status} {_label(root, case.file)}::{case.name}{note}")
    for line in outcome.lines:
        color = None
        if line.startswith("@@"):
            color = "cyan"
        elif line.startswith("+") and not line.startswith("+++"):
            color = "green"
        elif line.startswith("-") and not line.startswith("---"):
            color = "red"
        click.echo("    " + click.style(line, fg=color))


def run_cases(runner: Runner, cases: list[Case], concurrency: int):
    """Run the cases (`concurrency` at a time); yield their outcomes in file order as they are ready."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        yield from pool.map(runner.run, cases)


# ----------------------------------------------------------------------------------------------------
# Writing test files


def _inline(value: Any) -> str:
    """A YAML scalar on one line."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True)
        .removesuffix("\n...\n")
        .rstrip("\n")
    )


def render_value(value: Any, indent: int) -> str:
    """`value` as the text after `key: ` for a key at column `indent`: NDJSON text as a literal block."""
    if isinstance(value, str) and value.endswith("\n") and "\n" in value:
        pad = " " * (indent + 2)
        block = "|\n" + "".join(pad + line + "\n" if line else "\n" for line in value[:-1].split("\n"))
        try:
            if yaml.safe_load(f"k: {block}") == {"k": value}:
                return block.rstrip("\n")
        except yaml.YAMLError:
            pass
        return yaml.safe_dump(value, default_style='"', width=math.inf, allow_unicode=True).rstrip("\n")
    return _inline(value)


def render_tests(tests: list[dict[str, Any]]) -> str:
    """A Forward test file: the keys in the order given, NDJSON results as literal blocks."""
    out = []
    for test in tests:
        first = True
        for key, value in test.items():
            out.append(f"{'- ' if first else '  '}{key}: {render_value(value, 2)}\n")
            first = False
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"


def update_text(text: str, updates: dict[int, dict[str, Any]], shapes: dict[int, str]) -> tuple[str, bool]:
    """Set keys of the tests at the given list positions, editing `text` in place (comments, order and
    layout stay: True) or, when an edit cannot be made safely (flow-style tests), re-writing the whole
    file from its data (False)."""
    data = yaml.safe_load(text)
    wanted = _apply(data, updates, shapes)
    try:
        edited = _edit_in_place(text, updates, shapes)
        if yaml.safe_load(edited) == wanted:
            return edited, True
    except (yaml.YAMLError, _CannotEdit):
        pass
    return yaml.dump(wanted, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=math.inf), False


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (NDJSON results) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value.rstrip("\n") or (value.endswith("\n") and len(value) > 1) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _mapping_of(item: Any, shape: str) -> dict:
    return item if shape == "forward" else next(iter(item.values()))


def _apply(data: list, updates: dict[int, dict[str, Any]], shapes: dict[int, str]) -> list:
    import copy

    data = copy.deepcopy(data)
    for index, keys in updates.items():
        mapping = _mapping_of(data[index], shapes[index])
        mapping.update(keys)
    return data


class _CannotEdit(Exception):
    pass


def _edit_in_place(text: str, updates: dict[int, dict[str, Any]], shapes: dict[int, str]) -> str:
    root = yaml.compose(text)
    if not isinstance(root, yaml.SequenceNode) or root.flow_style:
        raise _CannotEdit
    edits: list[tuple[int, int, str]] = []
    for index, keys in updates.items():
        node = root.value[index]
        if shapes[index] == "classic":
            node = node.value[0][1]
        if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
            raise _CannotEdit
        indent = node.value[0][0].start_mark.column
        present = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        inserts = []
        for key, value in keys.items():
            if key in present:
                edits.append(_replace(text, present[key][1], render_value(value, indent)))
            else:
                inserts.append(f"{' ' * indent}{key}: {render_value(value, indent)}\n")
        if inserts:
            at = _after_value(text, node.value[-1][1])
            prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
            edits.append((at, at, prefix + "".join(inserts)))
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _after_value(text: str, value: yaml.Node) -> int:
    """Where a new key goes after this value: the start of the line after its last content."""
    span = text[value.start_mark.index : value.end_mark.index]
    content_end = value.start_mark.index + len(span.rstrip())
    newline = text.find("\n", content_end)
    return len(text) if newline < 0 else newline + 1


def _replace(text: str, value: yaml.Node, rendered: str) -> tuple[int, int, str]:
    start, end = value.start_mark.index, value.end_mark.index
    span = text[start:end]
    if isinstance(value, yaml.ScalarNode) and value.style in ("|", ">"):
        trailing = span[len(span.rstrip("\n")) :]  # blank lines after the block: keep them
        return start, end, rendered + (trailing or "\n")
    if not isinstance(value, yaml.ScalarNode) and not value.flow_style:
        raise _CannotEdit  # a block collection where a scalar goes
    if rendered.startswith("|"):
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        rest = text[end:line_end]
        if rest.strip():  # `key: '' # comment`: the comment moves onto the block's header line
            header, _, body = rendered.partition("\n")
            return start, line_end, f"{header} {rest.strip()}\n{body}"
        return start, end, rendered
    return start, end, rendered


# ----------------------------------------------------------------------------------------------------
# Commands


def project_root(folder: Path | None) -> Path:
    """`--folder`, else the nearest folder with a `.tinyb`, else the current one (as `tody push`)."""
    from tody.cli.project.layout import find_root

    return find_root(folder)


FOLDER_OPTION = click.option(
    "--folder",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The project folder, whose tests/ holds the test files (default: the nearest folder with a "
    ".tinyb, else the current one).",
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
                _print(outcome, folder)
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
                click.echo(f"{_label(folder, path)} exists: skipped (--force overwrites it)")
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
            rows = len(_lines(body))
            warn = "" if status == 200 else f"  (HTTP {status}: the default parameters fail)"
            click.echo(f"Wrote {_label(folder, path)}: {rows} row(s){warn}")
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
                    click.echo(f"{_label(folder, path)}::{c.name}: skipped ({c.error})")
                elif not c.compare:
                    click.echo(f"{_label(folder, path)}::{c.name}: skipped (a Classic no-rows check)")
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                answers = list(pool.map(lambda c: runner.pipe_ndjson(c.pipe, _query(c)), todo))
            updates: dict[int, dict[str, Any]] = {}
            changed = []
            original = yaml.safe_load(path.read_text(encoding="utf-8"))
            for case, (status, body) in zip(todo, answers, strict=True):
                keys: dict[str, Any] = {}
                mapping = _mapping_of(original[case.index], case.shape)
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
                click.echo(f"Updated {_label(folder, path)}: {', '.join(changed)}{how}")
            else:
                click.echo(f"{_label(folder, path)}: up to date")
    finally:
        runner.close()


def _query(case: Case) -> list[tuple[str, str]]:
    return [*case.params, *([("q", case.sql)] if case.sql else [])]
