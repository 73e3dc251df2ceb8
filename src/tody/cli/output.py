"""How every `tody` command talks to its user: one set of conventions, in one place.

- A listing prints a table, or with `--format json` the API's JSON and nothing else on stdout.
- What a command did ("Token 'x' created") may go to stderr (`note`), so stdout stays data.
- A destructive command asks first, on stderr, unless `--yes`; any answer but yes aborts (exit 1) with
  nothing changed. Without a terminal the question still reads stdin (`yes | tody … ` works).
- Progress (uploads, jobs followed with `--wait`) is drawn on stderr; without a terminal only its
  final state is printed, once.
- A failure is a `click.ClickException` (the client's `ApiError` carries the server's message and the
  HTTP status): "Error: …" on stderr, exit code 1. Usage errors exit 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson

# The listing helpers were born in the client module; commands take them from here.
from tody.cli.client import FORMAT_OPTION, Client, echo_json, show_listing

__all__ = [
    "FORMAT_OPTION",
    "MATCH_OPTION",
    "VALUE_FORMAT",
    "YES",
    "confirm",
    "echo_json",
    "follow_job",
    "format_option",
    "matching",
    "note",
    "show_listing",
    "show_result",
    "upload_progress",
]

VALUE_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text prints the token value only; json prints the API's JSON.",
)
YES = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
MATCH_OPTION = click.option("--match", help="Only those whose name contains this text (case-insensitive).")


def format_option(*choices: str, default: str, help: str | None = None):
    """`--format` for commands whose output is data (a query result), not a listing."""
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=default, show_default=True, help=help
    )


def matching(items: list[dict], match: str | None, key: str = "name") -> list[dict]:
    """The items whose `key` contains `match` (case-insensitive); all of them without `match`."""
    if not match:
        return items
    return [item for item in items if match.lower() in str(item.get(key, "")).lower()]


def note(message: str) -> None:
    """Tell the user what happened, on stderr: stdout stays the command's data."""
    click.echo(message, err=True)


def confirm(yes: bool, question: str) -> None:
    """Ask `question` on stderr unless `yes` (--yes); any answer but yes aborts with exit code 1."""
    if not yes:
        click.confirm(question, abort=True, err=True)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


# -- query results -----------------------------------------------------------------------------------


def _cell(value: Any):
    from rich.text import Text

    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, (dict, list)):
        return Text(orjson.dumps(value).decode())
    return Text(str(value))  # Text, not markup: a value like "[b]" is shown as it is


def show_result(body: dict) -> None:
    """A JSON query result (`meta` and `data`, from /v0/sql or an endpoint) as a table on stdout; the
    row count and the time it took on stderr."""
    from rich.console import Console
    from rich.table import Table

    columns = [m["name"] for m in body.get("meta", [])]
    table = Table(*columns)
    for row in body.get("data", []):
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console().print(table)
    rows = body.get("rows", len(body.get("data", [])))
    elapsed = (body.get("statistics") or {}).get("elapsed")
    note(f"{rows} row(s)" + (f" in {elapsed:.3f}s" if isinstance(elapsed, (int, float)) else ""))


# -- progress ----------------------------------------------------------------------------------------


@contextmanager
def upload_progress(file: Path) -> Iterator[tuple[Iterable[bytes], Callable[[str], None]]]:
    """Read `file` in chunks for an HTTP body while a bar on stderr shows how much was sent. Yields
    (the chunks, a function that relabels the bar once the server has answered)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_stderr_console()) as progress:
        task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
                    progress.advance(task, len(chunk))

        yield chunks(), lambda text: progress.update(task, description=text)


FINISHED = ("done", "error", "cancelled")


def follow_job(client: Client, job_id: str, timeout: float = 3600.0) -> dict:
    """Poll job `job_id` until it ends, with a progress bar on stderr; return it when it is done, else
    fail (exit 1) with its status and error. Ctrl-C stops waiting, not the job."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=_stderr_console()) as progress:
            task = progress.add_task(f"job {job_id}", total=100)
            while True:
                job = client.json("GET", f"/v0/jobs/{job_id}")
                progress.update(
                    task,
                    completed=job["progress_percentage"],
                    description=f"{job['kind']} job {job_id}: {job['status']}",
                )
                if job["status"] in FINISHED:
                    break
                if time.monotonic() > deadline:
                    raise click.ClickException(
                        f"Job {job_id} is still {job['status']} after {timeout:.0f}s; "
                        f"follow it with `tody job show {job_id}`"
                    )
                time.sleep(0.5)
    except KeyboardInterrupt:
        note(f"\nStopped waiting; job {job_id} goes on (`tody job show|cancel {job_id}`)")
        raise click.Abort() from None
    if job["status"] != "done":
        error = job.get("error")
        raise click.ClickException(f"Job {job_id} ended {job['status']}" + (f": {error}" if error else ""))
    return job
