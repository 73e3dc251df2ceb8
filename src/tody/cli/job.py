"""`tody job`: list, show and cancel jobs (imports from URLs, deletes, copies, populates)."""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.table import Column

from tody.cli.client import Client, client_options
from tody.cli.output import FORMAT_OPTION, YES, confirm, show_listing

STATUSES = ("waiting", "working", "cancelling", "done", "error", "cancelled")
# Left out of `job show`'s table: repeated (job_id), long (job_url), or lists (errors: the error is shown).
HIDDEN = ("job_id", "job_url", "errors", "block_log", "statistics", "progress")


def _path(job_id: str) -> str:
    return f"/v0/jobs/{quote(job_id, safe='')}"


def _name(value) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("id") or "")
    return str(value or "")


def _on(job: dict) -> str:
    """What the job works on: `pipe → data source`, or one of them."""
    return " → ".join(n for n in (_name(job.get("pipe")), _name(job.get("datasource"))) if n)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _status(job: dict) -> str:
    return f"{job['status']} {job['progress_percentage']}%" if job["status"] == "working" else job["status"]


@click.group()
def job() -> None:
    """Asynchronous jobs: imports from URLs, row deletes, copies, populates.

    \b
    tody job ls --status working
    tody job show 8c6a…
    tody job cancel 8c6a…
    """


@job.command("ls")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option("--kind", help="Only jobs of this kind: import, delete_data, copy, populateview.")
@FORMAT_OPTION
@client_options
def ls(status: str | None, kind: str | None, fmt: str, host: str, token: str | None) -> None:
    """List the jobs of the last 48 hours, newest first.

    \b
    tody job ls --kind import --status error
    tody job ls --format json | jq -r '.jobs[] | select(.status == "working") | .id'
    """
    params = {k: v for k, v in (("status", status), ("kind", kind)) if v}
    show_listing(
        Client(host, token).json("GET", "/v0/jobs", params=params),
        fmt,
        # the id whole (to copy it), a long error cut (`tody job show ID` has it all)
        (Column("id", no_wrap=True), "kind", "status", "on", "created_at", "error"),
        lambda body: (
            (j["id"], j["kind"], _status(j), _on(j), j["created_at"][:19], _cut(j.get("error") or "", 40))
            for j in body["jobs"]
        ),
    )


def _fields(job: dict):
    for key, value in job.items():
        if key in HIDDEN or isinstance(value, list):
            continue
        if key == "progress_percentage":
            yield "progress", f"{value}%"
        elif isinstance(value, dict):
            if _name(value):
                yield key, _name(value)
        else:
            yield key, "" if value is None else value


@job.command("show")
@click.argument("job_id")
@FORMAT_OPTION
@client_options
def show(job_id: str, fmt: str, host: str, token: str | None) -> None:
    """Show job JOB_ID: kind, status, progress, what it works on, its result or error.

    \b
    tody job show 8c6a…
    tody job show 8c6a… --format json | jq .status
    """
    body = Client(host, token).json("GET", _path(job_id))
    show_listing(body, fmt, ("field", "value"), lambda b: list(_fields(b)))


@job.command("cancel")
@click.argument("job_id")
@YES
@client_options
def cancel(job_id: str, yes: bool, host: str, token: str | None) -> None:
    """Cancel job JOB_ID while it is waiting or working (a working job stops at its next checkpoint).

    \b
    tody job cancel 8c6a… --yes
    """
    client = Client(host, token)
    found = client.json("GET", _path(job_id))  # a missing or finished job fails before the question
    if found["status"] in ("done", "error", "cancelled"):
        raise click.ClickException(f"Job {job_id} is {found['status']} and cannot be cancelled")
    on = _on(found)
    confirm(yes, f"Cancel {found['kind']} job {job_id}{f' ({on})' if on else ''}, now {found['status']}?")
    body = client.json("POST", f"{_path(job_id)}/cancel")
    click.echo(f"Job {job_id} is {body['status']}")
