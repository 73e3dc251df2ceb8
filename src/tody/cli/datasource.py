"""`tody datasource`: list, create, import into (file or URL, full or partial replace), truncate, delete
rows, remove, share with other workspaces."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import click

from tody.cli.client import USER_TOKEN_OPTION, Client, acting_on, client_options
from tody.cli.output import (
    FORMAT_OPTION,
    MATCH_OPTION,
    YES,
    confirm,
    follow_job,
    matching,
    show_listing,
    upload_progress,
)


def _path(name: str) -> str:
    return f"/v0/datasources/{quote(name, safe='')}"


@click.group()
def datasource() -> None:
    """Data Sources: the tables you ingest into.

    \b
    tody datasource ls
    tody datasource create datasources/events.datasource
    tody datasource append events events.ndjson            # a progress bar while it uploads
    tody datasource append events https://example.com/events.csv.gz --wait
    tody datasource replace events day.csv --sql-condition "toDate(timestamp) = '2024-01-02'"
    tody datasource delete events --sql-condition "user_id = 42" --wait
    tody datasource truncate events
    tody datasource rm events
    """


@datasource.command("ls")
@MATCH_OPTION
@FORMAT_OPTION
@client_options
def ls(match: str | None, fmt: str, host: str, token: str | None) -> None:
    """List the Data Sources of the workspace (and those shared with it), with rows and bytes.

    \b
    tody datasource ls --match events
    tody datasource ls --format json | jq -r '.datasources[].name'
    """
    body = Client(host, token).json("GET", "/v0/datasources")
    body["datasources"] = matching(body["datasources"], match)
    show_listing(
        body,
        fmt,
        ("name", "rows", "bytes", "engine", "created_at"),
        lambda b: (
            (
                d["name"],
                d["statistics"]["row_count"],
                d["statistics"]["bytes"],
                d["engine"]["engine"],
                d["created_at"][:19],
            )
            for d in b["datasources"]
        ),
    )


@datasource.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Data Source name (default: the file name without .datasource).")
@client_options
def create(file: Path, name: str | None, host: str, token: str | None) -> None:
    """Create a Data Source from a .datasource FILE.

    \b
    tody datasource create datasources/events.datasource
    tody datasource create events.datasource --name events_v2
    """
    name = name or file.name.split(".")[0]
    body = Client(host, token).json(
        "POST",
        "/v0/datasources",
        params={"name": name, "mode": "create", "format": "datasource"},
        content=file.read_bytes(),
        headers={"Content-Type": "text/plain"},
    )
    click.echo(f"Data Source '{body['datasource']['name']}' created ({body['datasource']['id']})")


@datasource.command("truncate")
@click.argument("name")
@YES
@client_options
def truncate(name: str, yes: bool, host: str, token: str | None) -> None:
    """Remove every row of Data Source NAME (it stays, empty).

    \b
    tody datasource truncate events --yes
    """
    confirm(yes, f"Remove every row of '{name}'?")
    Client(host, token).request("POST", f"{_path(name)}/truncate")
    click.echo(f"Data Source '{name}' truncated")


@datasource.command("delete")
@click.argument("name")
@click.option("--sql-condition", required=True, help="Rows matching this SQL condition are deleted.")
@click.option("--dry-run", is_flag=True, help="Only count the rows that would be deleted.")
@click.option(
    "--wait", is_flag=True, help="Wait for the delete job, with a progress bar, and print its result."
)
@YES
@client_options
def delete(name: str, sql_condition: str, dry_run: bool, wait: bool, yes: bool, host: str, token: str | None):
    """Delete the rows of Data Source NAME that match --sql-condition (as a job).

    \b
    tody datasource delete events --sql-condition "user_id = 42" --dry-run   # how many rows
    tody datasource delete events --sql-condition "user_id = 42" --wait --yes
    """
    client = Client(host, token)
    form = {"delete_condition": sql_condition}
    if dry_run:
        body = client.json("POST", f"{_path(name)}/delete", data={**form, "dry_run": "true"})
        click.echo(f"{body['rows_to_be_deleted']} row(s) would be deleted")
        return
    confirm(yes, f"Delete the rows of '{name}' where {sql_condition}?")
    body = client.json("POST", f"{_path(name)}/delete", data=form)
    click.echo(f"Delete job {body['job_id']} started")
    if wait:
        job = follow_job(client, body["job_id"])
        click.echo(f"{job.get('rows_affected', 0)} row(s) deleted")


@datasource.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Even when pipes read it (they stop working).")
@YES
@client_options
def rm(name: str, force: bool, yes: bool, host: str, token: str | None) -> None:
    """Remove Data Source NAME with all its rows (refused while pipes read it, unless --force).

    \b
    tody datasource rm events_old --yes
    """
    client = Client(host, token)
    pipes = client.json("DELETE", _path(name), params={"dry_run": "true"})["dependent_pipes"]
    if pipes and not force:
        raise click.ClickException(
            f"Data Source '{name}' is used by {', '.join(pipes)}: remove those first, "
            "or pass --force (they stop working)"
        )
    using = f"; {', '.join(pipes)} read it and stop working" if pipes else ""
    confirm(yes, f"Remove Data Source '{name}' and all its rows{using}? This cannot be undone")
    client.request("DELETE", _path(name), params={"force": "true"} if force else {})
    click.echo(f"Data Source '{name}' removed")


def _file_or_url(ctx: click.Context, param: click.Parameter, value: str) -> str | Path:
    if value.startswith(("http://", "https://")):
        return value
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(f"'{value}' is neither a file nor an http(s):// URL")
    return path


DATA_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["csv", "ndjson", "parquet"]), help="Default: from the extension."
)
WAIT = click.option(
    "--wait",
    is_flag=True,
    help="For a URL: wait for the import job, with a progress bar, and print its result.",
)


@datasource.command("append")
@click.argument("name")
@click.argument("source", metavar="FILE_OR_URL", callback=_file_or_url)
@DATA_FORMAT
@WAIT
@client_options
def append(name: str, source: str | Path, fmt: str | None, wait: bool, host: str, token: str | None) -> None:
    """Append the rows of FILE_OR_URL (CSV, NDJSON or Parquet; gzip or not) to Data Source NAME.

    A local file is uploaded with a progress bar; for an http(s):// URL the server downloads it in a
    job. Rows that do not fit the schema go to NAME_quarantine.

    \b
    tody datasource append events events.ndjson
    tody datasource append events https://example.com/events.csv.gz --wait
    """
    _import(name, source, fmt, "append", wait, host, token)


@datasource.command("replace")
@click.argument("name")
@click.argument("source", metavar="FILE_OR_URL", callback=_file_or_url)
@DATA_FORMAT
@click.option(
    "--sql-condition",
    help="Replace only the rows matching this SQL condition (incoming rows that do not match are left out).",
)
@WAIT
@YES
@client_options
def replace(
    name: str,
    source: str | Path,
    fmt: str | None,
    sql_condition: str | None,
    wait: bool,
    yes: bool,
    host: str,
    token: str | None,
) -> None:
    """Replace the rows of Data Source NAME with the rows of FILE_OR_URL (atomically): all of them, or
    those matching --sql-condition.

    \b
    tody datasource replace events snapshot.csv --yes
    tody datasource replace events day.csv --sql-condition "toDate(timestamp) = '2024-01-02'"
    """
    shown = source.name if isinstance(source, Path) else source
    which = f"the rows of '{name}' where {sql_condition}" if sql_condition else f"every row of '{name}'"
    confirm(yes, f"Replace {which} with {shown}?")
    extra = {"replace_condition": sql_condition} if sql_condition else {}
    _import(name, source, fmt, "replace", wait, host, token, extra)


def _import(
    name: str,
    source: str | Path,
    fmt: str | None,
    mode: str,
    wait: bool,
    host: str,
    token: str | None,
    extra: dict[str, str] | None = None,
) -> None:
    client = Client(host, token)
    params = {"name": name, "mode": mode, **({"format": fmt} if fmt else {}), **(extra or {})}
    if isinstance(source, Path):
        _report(name, mode, _upload(client, source, params))
        return
    body = client.json("POST", "/v0/datasources", data={**params, "url": source})
    click.echo(f"Import job {body['job_id']} started")
    if wait:
        _report(name, mode, follow_job(client, body["job_id"]))


def _upload(client: Client, file: Path, params: dict[str, str]) -> dict:
    """Stream `file` as the request body (never whole in memory); the server takes the format from
    `format`, else from the file name."""
    with upload_progress(file) as (chunks, relabel):
        body = client.json(
            "POST",
            "/v0/datasources",
            params={**params, "filename": file.name},
            content=chunks,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(file.stat().st_size)},
            timeout=None,
        )
        relabel(f"uploaded {file.name}")
        return body


def _report(name: str, mode: str, body: dict) -> None:
    """Print an import's result (the upload's answer or the finished job: the same fields)."""
    rows, quarantined = body.get("rows", 0), body.get("quarantine_rows", 0)
    click.echo(
        f"{rows} row(s) {'appended to' if mode == 'append' else 'now in'} '{name}'"
        + (f"; {quarantined} row(s) in {name}_quarantine" if quarantined else "")
    )
    if body.get("error"):
        raise click.ClickException(str(body["error"]))


def _share(method: str, name: str, destination: str, host, token, user_token, **extra: str) -> dict:
    """The token's workspace is the origin; with a user token (an admin of it) the destination may be
    any workspace of the user, with the workspace token one of the same organization."""
    client = Client(host, token, user_token=user_token)
    origin, as_user = acting_on(client)
    params = {"destination_workspace_name": destination, **extra}
    if as_user:
        params["origin_workspace_id"] = origin
    return client.json(method, f"{_path(name)}/share", params=params, as_user=as_user)


@datasource.command("share")
@click.argument("name")
@click.argument("destination", metavar="WORKSPACE")
@client_options
@USER_TOKEN_OPTION
def share(name: str, destination: str, host, token, user_token) -> None:
    """Share Data Source NAME, read-only, with WORKSPACE (name or id); there it is read as
    <this workspace>.NAME.

    \b
    tody datasource share events marketing      # in marketing: SELECT … FROM sales.events
    """
    body = _share("POST", name, destination, host, token, user_token)
    click.echo(
        f"Data Source '{name}' shared with workspace '{destination}': "
        f"read it there as {body['origin_workspace']['name']}.{body['name']}"
    )


@datasource.command("unshare")
@click.argument("name")
@click.argument("destination", metavar="WORKSPACE")
@click.option("--force", is_flag=True, help="Even when pipes of WORKSPACE read it (they stop working).")
@client_options
@USER_TOKEN_OPTION
def unshare(name: str, destination: str, force: bool, host, token, user_token) -> None:
    """Stop sharing Data Source NAME with WORKSPACE (refused while its pipes read it, unless --force).

    \b
    tody datasource unshare events marketing
    """
    _share("DELETE", name, destination, host, token, user_token, **({"force": "true"} if force else {}))
    click.echo(f"Data Source '{name}' no longer shared with workspace '{destination}'")
