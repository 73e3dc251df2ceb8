"""`tody job`: list, show and cancel jobs."""

from __future__ import annotations

import click

from tody.cli.client import FORMAT_OPTION, Client, client_options, echo_json, show_listing


@click.group()
def job() -> None:
    """Asynchronous jobs (imports, deletes, populates, copies)."""


@job.command("ls")
@click.option("--status", help="Only jobs in this status (waiting, working, done, error, cancelled).")
@click.option("--kind", help="Only jobs of this kind (import, delete_data, …).")
@FORMAT_OPTION
@client_options
def ls(status: str | None, kind: str | None, fmt: str, host: str, token: str | None) -> None:
    """List the jobs of the last 48 hours."""
    params = {k: v for k, v in (("status", status), ("kind", kind)) if v}
    show_listing(
        Client(host, token).json("GET", "/v0/jobs", params=params),
        fmt,
        ("id", "kind", "status", "progress", "created_at", "error"),
        lambda body: (
            (
                j["id"],
                j["kind"],
                j["status"],
                f"{j['progress_percentage']}%",
                j["created_at"][:19],
                (j.get("error") or "")[:60],
            )
            for j in body["jobs"]
        ),
    )


@job.command("show")
@click.argument("job_id")
@client_options
def show(job_id: str, host: str, token: str | None) -> None:
    """Show one job as JSON."""
    echo_json(Client(host, token).json("GET", f"/v0/jobs/{job_id}"))


@job.command("cancel")
@click.argument("job_id")
@client_options
def cancel(job_id: str, host: str, token: str | None) -> None:
    """Cancel a waiting or running job."""
    body = Client(host, token).json("POST", f"/v0/jobs/{job_id}/cancel")
    click.echo(f"Job {job_id} is {body['status']}")
