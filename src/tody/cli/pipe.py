"""`tody pipe`: list pipes, call endpoints, print their URLs, remove pipes, run and schedule copies."""

from __future__ import annotations

from urllib.parse import urlencode

import click

from tody.cli.client import FORMAT_OPTION, Client, client_options, show_listing, wait_for_job

FORMATS = {"json": "json", "csv": "csvwithnames", "ndjson": "ndjson"}


@click.group()
def pipe() -> None:
    """Manage Pipes and call their API Endpoints."""


@pipe.command("ls")
@FORMAT_OPTION
@client_options
def ls(fmt: str, host: str, token: str | None) -> None:
    """List the pipes of the workspace."""
    show_listing(
        Client(host, token).json("GET", "/v0/pipes"),
        fmt,
        ("name", "type", "nodes", "endpoint node", "updated_at"),
        lambda body: (
            (
                p["name"],
                p["type"],
                len(p["nodes"]),
                next((n["name"] for n in p["nodes"] if n["id"] == p.get("endpoint")), ""),
                p["updated_at"][:19],
            )
            for p in body["pipes"]
        ),
    )


def _params(args: list[str]) -> dict[str, str]:
    """`--name value` pairs after the pipe name become endpoint parameters."""
    params: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        if not arg.startswith("--"):
            raise click.UsageError(f"Unexpected argument '{arg}': give parameters as --name value")
        key, eq, value = arg[2:].partition("=")
        params[key] = value if eq else next(it, "")
    return params


@pipe.command("data", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="json", show_default=True)
@click.option("--q", "q", help="SQL to run over the result (the table `_`).")
@client_options
@click.pass_context
def data(ctx: click.Context, name: str, fmt: str, q: str | None, host: str, token: str | None) -> None:
    """Call the endpoint of pipe NAME; pass its parameters as --param value."""
    params = _params(ctx.args)
    if q:
        params["q"] = q
    res = Client(host, token).request("GET", f"/v0/pipes/{name}.{FORMATS[fmt]}", params=params)
    click.echo(res.text, nl=False)


@pipe.command("url", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "ndjson", "parquet"]), default="json")
@client_options
@click.pass_context
def url(ctx: click.Context, name: str, fmt: str, host: str, token: str | None) -> None:
    """Print a ready-to-use URL for the endpoint of pipe NAME (with the token)."""
    client = Client(host, token)
    client.json("GET", f"/v0/pipes/{name}")  # fails clearly when the pipe is missing
    query = urlencode({**_params(ctx.args), "token": client.token})
    click.echo(f"{client.host}/v0/pipes/{name}.{fmt}?{query}")


@pipe.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
def rm(name: str, yes: bool, host: str, token: str | None) -> None:
    """Remove pipe NAME."""
    if not yes:
        click.confirm(f"Remove pipe '{name}'?", abort=True)
    Client(host, token).request("DELETE", f"/v0/pipes/{name}")
    click.echo(f"Pipe '{name}' removed")


@pipe.group("copy")
def copy() -> None:
    """Copy pipes: run one now, pause or resume its schedule."""


@copy.command("run")
@click.argument("name")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="A template parameter (repeatable)."
)
@click.option("--mode", type=click.Choice(["append", "replace"]), help="Override the pipe's copy mode.")
@click.option("--wait", is_flag=True, help="Wait for the copy job and print how many rows it wrote.")
@client_options
def copy_run(name: str, params: tuple[str, ...], mode: str | None, wait: bool, host: str, token: str | None):
    """Run the copy of pipe NAME now (as a job)."""
    query: dict[str, str] = {}
    for item in params:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.UsageError(f"--param '{item}': give it as KEY=VALUE")
        query[key] = value
    if mode:
        query["_mode"] = mode
    client = Client(host, token)
    body = client.json("POST", f"/v0/pipes/{name}/copy", params=query)
    click.echo(f"Copy job {body['job_id']} started")
    if wait:
        job = wait_for_job(client, body["job_id"])
        if job["status"] != "done":
            raise click.ClickException(f"Job {job['id']} ended {job['status']}: {job.get('error', '')}")
        target = (job.get("datasource") or {}).get("name", "the target")
        click.echo(f"{job.get('rows', 0)} row(s) copied into '{target}' ({job.get('mode')})")


@copy.command("pause")
@click.argument("name")
@client_options
def copy_pause(name: str, host: str, token: str | None) -> None:
    """Pause the schedule of copy pipe NAME (runs on demand still work)."""
    body = Client(host, token).json("POST", f"/v0/pipes/{name}/copy/pause")
    click.echo(f"Copy schedule of '{name}' ({body['schedule']['cron']}) paused")


@copy.command("resume")
@click.argument("name")
@client_options
def copy_resume(name: str, host: str, token: str | None) -> None:
    """Resume the schedule of copy pipe NAME (missed firings are not caught up)."""
    body = Client(host, token).json("POST", f"/v0/pipes/{name}/copy/resume")
    schedule = body["schedule"]
    click.echo(
        f"Copy schedule of '{name}' ({schedule['cron']}) resumed; next run at {schedule['next_run_at']}"
    )


@pipe.command("populate")
@click.argument("name")
@click.option("--node", help="The materialized node (default: the pipe's materialized node).")
@click.option("--sql-condition", "condition", help="Populate only source rows matching this SQL condition.")
@click.option("--truncate", is_flag=True, help="Empty the target first.")
@click.option("--wait", is_flag=True, help="Wait for the populate job and print how many rows it wrote.")
@client_options
def populate(
    name: str,
    node: str | None,
    condition: str | None,
    truncate: bool,
    wait: bool,
    host: str,
    token: str | None,
):
    """Populate the target of materialized pipe NAME from the rows already in its source (as a job)."""
    client = Client(host, token)
    if node is None:
        nodes = [n for n in client.json("GET", f"/v0/pipes/{name}")["nodes"] if n["type"] == "materialized"]
        if not nodes:
            raise click.ClickException(f"Pipe '{name}' has no materialized node")
        node = nodes[0]["name"]
    form = {"truncate": "true" if truncate else "false"}
    if condition:
        form["populate_condition"] = condition
    body = client.json("POST", f"/v0/pipes/{name}/nodes/{node}/population", data=form)
    click.echo(f"Populate job {body['job_id']} started")
    if wait:
        job = wait_for_job(client, body["job_id"])
        if job["status"] != "done":
            raise click.ClickException(f"Job {job['id']} ended {job['status']}: {job.get('error', '')}")
        click.echo(f"{job.get('rows', 0)} row(s) written into '{job.get('datasource')}'")
