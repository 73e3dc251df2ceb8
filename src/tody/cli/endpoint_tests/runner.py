"""Running endpoint test cases against the server, in parallel, and printing their outcomes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import click
import httpx

from tody.cli.client import Client
from tody.cli.endpoint_tests.cases import Case, compare, ndjson_lines, query_params


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
        status, body = self.pipe_ndjson(case.pipe, query_params(case))
        out = Outcome(case, "PASS", http_status=status, body=body)
        if status != case.expected_status:
            out.status = "FAIL"
            out.lines.append(f"HTTP {status}, expected {case.expected_status}")
            if status >= 400 or case.expected_status >= 400:
                out.lines += [f"  {line}" for line in ndjson_lines(body)[:5]]
            return out
        if case.expected_result is not None:
            diff = compare(case.expected_result, body, case.ignore_order)
            if diff is not None:
                out.status = "FAIL"
                out.lines = diff
        return out

    def _classic(self, case: Case) -> Outcome:
        if case.pipe:
            res = self.get(f"/v0/pipes/{quote(case.pipe, safe='')}.json", query_params(case))
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
    lines = ndjson_lines(text)
    return "".join(line + "\n" for line in lines)


COLORS = {"PASS": "green", "FAIL": "red", "ERROR": "yellow"}


def label(root: Path, path: Path) -> str:
    for base in (Path.cwd(), root):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def print_outcome(outcome: Outcome, root: Path) -> None:
    case = outcome.case
    status = click.style(f"{outcome.status:<5}", fg=COLORS[outcome.status], bold=True)
    note = f"  ({outcome.note})" if outcome.note else ""
    click.echo(f"{status} {label(root, case.file)}::{case.name}{note}")
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
