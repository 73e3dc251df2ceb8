"""`tody pipe`: list pipes, call endpoints, print their URLs, remove pipes, run and schedule copies,
populate materialized views."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import click

from tody.cli.client import Client, client_options
from tody.cli.output import (
    FORMAT_OPTION,
    MATCH_OPTION,
    YES,
    confirm,
    follow_job,
    format_option,
    matching,
    show_listing,
    show_result,
)

# --format of `pipe data` → the endpoint's extension (a table is drawn from the JSON).
EXTENSIONS = {"table": "json", "json": "json", "csv": "csvwithnames", "ndjson": "ndjson"}


def _path(name: str) -> str:
    return f"/v0/pipes/{quote(name, safe='')}"


@click.group()
def pipe() -> None:
    """Pipes: list them, call their API Endpoints, remove them, run copies and populates.

    \b
    tody pipe ls
    tody pipe data top_events --days 30             # or: --param days=30
    tody pipe data top_events --format csv > top.csv
    tody pipe url top_events                        # a ready-to-use URL with the token
    tody pipe rm old_pipe
    tody pipe copy run snapshot_daily --param days=30 --wait
    tody pipe populate daily_mv --wait
    """


@pipe.command("ls")
@MATCH_OPTION
@FORMAT_OPTION
@client_options
def ls(match: str | None, fmt: str, host: str, token: str | None) -> None:
    """List the pipes of the workspace: type, nodes, published endpoint node.

    \b
    tody pipe ls --match top
    tody pipe ls --format json | jq -r '.pipes[].name'
    """
    body = Client(host, token).json("GET", "/v0/pipes")
    body["pipes"] = matching(body["pipes"], match)
    show_listing(
        body,
        fmt,
        ("name", "type", "nodes", "endpoint node", "updated_at"),
        lambda b: (
            (
                p["name"],
                p["type"],
                len(p["nodes"]),
                next((n["name"] for n in p["nodes"] if n["id"] == p.get("endpoint")), ""),
                p["updated_at"][:19],
            )
            for p in b["pipes"]
        ),
    )


def _key_values(items: tuple[str, ...], option: str = "--param") -> dict[str, str]:
    """`KEY=VALUE` items (of a repeatable option) as a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.UsageError(f"{option} '{item}': give it as KEY=VALUE")
        out[key] = value
    return out


def _extra_params(args: list[str]) -> dict[str, str]:
    """`--name value` (or `--name=value`) pairs after the pipe name become endpoint parameters."""
    params: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        if not arg.startswith("--") or arg == "--":
            raise click.UsageError(f"Unexpected argument '{arg}': give parameters as --name value")
        key, eq, value = arg[2:].partition("=")
        if eq:
            params[key] = value
        else:
            value = next(it, None)
            if value is None:
                raise click.UsageError(f"Parameter --{key} has no value: give it as --{key} value")
            params[key] = value
    return params


PARAM_OPTION = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A template parameter (repeatable); also --KEY VALUE, for names that are not tody options.",
)
TEMPLATE_ARGS = {"ignore_unknown_options": True, "allow_extra_args": True}


@pipe.command("data", context_settings=TEMPLATE_ARGS)
@click.argument("name")
@PARAM_OPTION
@format_option(*EXTENSIONS, default="json", help="table draws the rows; json, csv and ndjson print them.")
@click.option("--q", "q", help="SQL to run over the result (the table `_`).")
@client_options
@click.pass_context
def data(
    ctx: click.Context,
    name: str,
    params: tuple[str, ...],
    fmt: str,
    q: str | None,
    host: str,
    token: str | None,
) -> None:
    """Call the API Endpoint of pipe NAME and print its result.

    \b
    tody pipe data top_events --days 30 --limit 5
    tody pipe data top_events --param days=30 --format table
    tody pipe data top_events --format ndjson --q "SELECT event FROM _ WHERE c > 100"
    """
    query = {**_extra_params(ctx.args), **_key_values(params)}
    if q:
        query["q"] = q
    res = Client(host, token).request("GET", f"{_path(name)}.{EXTENSIONS[fmt]}", params=query)
    if fmt == "table":
        show_result(res.json())
    else:
        click.echo(res.text, nl=False)


@pipe.command("url", context_settings=TEMPLATE_ARGS)
@click.argument("name")
@PARAM_OPTION
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "ndjson", "parquet"]), default="json")
@client_options
@click.pass_context
def url(
    ctx: click.Context, name: str, params: tuple[str, ...], fmt: str, host: str, token: str | None
) -> None:
    """Print a ready-to-use URL for the endpoint of pipe NAME (with the token).

    \b
    curl "$(tody pipe url top_events --days 7 --format csv)"
    """
    client = Client(host, token)
    client.json("GET", _path(name))  # fails clearly when the pipe is missing
    query = urlencode({**_extra_params(ctx.args), **_key_values(params), "token": client.token})
    click.echo(f"{client.host}{_path(name)}.{fmt}?{query}")


@pipe.command("rm")
@click.argument("name")
@YES
@client_options
def rm(name: str, yes: bool, host: str, token: str | None) -> None:
    """Remove pipe NAME: its endpoint stops answering, its copy schedule stops.

    \b
    tody pipe rm old_pipe --yes
    """
    confirm(yes, f"Remove pipe '{name}'? Its endpoint stops answering")
    Client(host, token).request("DELETE", _path(name))
    click.echo(f"Pipe '{name}' removed")


@pipe.group("copy")
def copy() -> None:
    """Copy pipes: run one now, pause or resume its schedule.

    \b
    tody pipe copy run snapshot_daily --param days=30 --wait
    tody pipe copy pause snapshot_daily
    tody pipe copy resume snapshot_daily
    """


@copy.command("run")
@click.argument("name")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="A template parameter (repeatable)."
)
@click.option("--mode", type=click.Choice(["append", "replace"]), help="Override the pipe's copy mode.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the copy job, with a progress bar, and print how many rows it wrote.",
)
@client_options
def copy_run(name: str, params: tuple[str, ...], mode: str | None, wait: bool, host: str, token: str | None):
    """Run the copy of pipe NAME now (as a job).

    \b
    tody pipe copy run snapshot_daily --param days=30 --mode replace --wait
    """
    query = _key_values(params)
    if mode:
        query["_mode"] = mode
    client = Client(host, token)
    body = client.json("POST", f"{_path(name)}/copy", params=query)
    click.echo(f"Copy job {body['job_id']} started")
    if wait:
        job = follow_job(client, body["job_id"])
        target = (job.get("datasource") or {}).get("name", "the target")
        click.echo(f"{job.get('rows', 0)} row(s) copied into '{target}' ({job.get('mode')})")


@copy.command("pause")
@click.argument("name")
@client_options
def copy_pause(name: str, host: str, token: str | None) -> None:
    """Pause the schedule of copy pipe NAME (runs on demand still work).

    \b
    tody pipe copy pause snapshot_daily
    """
    body = Client(host, token).json("POST", f"{_path(name)}/copy/pause")
    click.echo(f"Copy schedule of '{name}' ({body['schedule']['cron']}) paused")


@copy.command("resume")
@click.argument("name")
@client_options
def copy_resume(name: str, host: str, token: str | None) -> None:
    """Resume the schedule of copy pipe NAME (missed firings are not caught up).

    \b
    tody pipe copy resume snapshot_daily
    """
    body = Client(host, token).json("POST", f"{_path(name)}/copy/resume")
    schedule = body["schedule"]
    click.echo(
        f"Copy schedule of '{name}' ({schedule['cron']}) resumed; next run at {schedule['next_run_at']}"
    )


@pipe.command("populate")
@click.argument("name")
@click.option("--node", help="The materialized node (default: the pipe's materialized node).")
@click.option("--sql-condition", "condition", help="Populate only source rows matching this SQL condition.")
@click.option("--truncate", is_flag=True, help="Empty the target first.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the populate job, with a progress bar, and print how many rows it wrote.",
)
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
    """Populate the target of materialized pipe NAME from the rows already in its source (as a job).

    \b
    tody pipe populate daily_mv --truncate --wait
    tody pipe populate daily_mv --sql-condition "timestamp >= '2024-01-01'" --wait
    """
    client = Client(host, token)
    if node is None:
        nodes = [n for n in client.json("GET", _path(name))["nodes"] if n["type"] == "materialized"]
        if not nodes:
            raise click.ClickException(f"Pipe '{name}' has no materialized node")
        node = nodes[0]["name"]
    form = {"truncate": "true" if truncate else "false"}
    if condition:
        form["populate_condition"] = condition
    body = client.json("POST", f"{_path(name)}/nodes/{quote(node, safe='')}/population", data=form)
    click.echo(f"Populate job {body['job_id']} started")
    if wait:
        job = follow_job(client, body["job_id"])
        click.echo(f"{job.get('rows', 0)} row(s) written into '{job.get('datasource')}'")
