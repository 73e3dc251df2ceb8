"""Endpoint test files: the two YAML shapes read into `Case`s, and comparing answers with them.

The shapes are described in `tody.cli.test_cmd`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import click
import yaml

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


def ndjson_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _row(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line  # not JSON: compared as text


def compare(expected: str, actual: str, ignore_order: bool) -> list[str] | None:
    """None when the NDJSON texts hold the same rows, else a unified diff (expected → actual)."""
    exp, act = ndjson_lines(expected), ndjson_lines(actual)
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


def query_params(case: Case) -> list[tuple[str, str]]:
    """The request parameters of a case: its params, and its SQL as `q=` (run over the pipe's result)."""
    return [*case.params, *([("q", case.sql)] if case.sql else [])]
