"""`tody auth`: check a token against the server and save host and token in the project's `.tinyb`
(the current directory's or the nearest parent's; a new one in the current directory when there is
none), as `tb auth` does. Later commands run in the project take host and token from it.
"""

from __future__ import annotations

from pathlib import Path

import click

from tody.cli.client import ApiError, Client, client_options, echo_json
from tody.cli.project import tinyb


def _mask(token: str | None) -> str:
    if not token:
        return "(none)"
    return token[:6] + "…" + token[-4:] if len(token) > 16 else "…"


def _workspace(client: Client) -> dict:
    try:
        return client.json("GET", "/v0/workspace")
    except ApiError as exc:
        if exc.status in (401, 403):
            raise click.ClickException(f"Invalid token for {client.host}: {exc.format_message()}") from None
        raise


@click.group(invoke_without_command=True)
@click.option("--host", envvar="TODY_HOST", help="Server URL (env TODY_HOST; else the project's .tinyb's).")
@click.option(
    "--token",
    envvar="TODY_TOKEN",
    help="Workspace token (env TODY_TOKEN; a local server's admin token is found by itself).",
)
@click.pass_context
def auth(ctx: click.Context, host: str | None, token: str | None) -> None:
    """Check a token and save host and token in the project's .tinyb.

    \b
    tody auth --host http://127.0.0.1:7181 --token p.…
    tody auth info
    """
    if ctx.invoked_subcommand is not None:
        return
    client = Client(host, token)
    value = client.token
    workspace = _workspace(client)
    path = tinyb.find() or Path.cwd() / tinyb.FILENAME
    config = tinyb.read(path) if path.exists() else {}
    tinyb.write(path, tinyb.authenticated(config, client.host, value, workspace))
    click.echo(f"Auth OK: workspace '{workspace.get('name')}' ({workspace.get('id')}) at {client.host}")
    click.echo(f"Saved in {path}")
    if workspace.get("scope") != "admin":
        click.echo("Warning: this token is not an admin token; pushing datafiles needs one", err=True)


@auth.command("info")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@client_options
def info(fmt: str, host: str | None, token: str | None) -> None:
    """Show the host, the token (masked) and the workspace that commands here use, and where they come
    from."""
    client = Client(host, token)
    path = client.project_config_path
    workspace = _workspace(client)
    out = {
        "host": client.host,
        "token": _mask(client.known_token or client.token),
        "workspace": {"id": workspace.get("id"), "name": workspace.get("name")},
        "scope": workspace.get("scope"),
        "project_config": str(path) if path else None,
    }
    if fmt == "json":
        echo_json(out)
        return
    click.echo(f"host:           {out['host']}")
    click.echo(f"workspace:      {out['workspace']['name']} ({out['workspace']['id']})")
    click.echo(f"token:          {out['token']} ({out['scope'] or 'scoped'})")
    click.echo(f"project config: {out['project_config'] or '(no .tinyb here or in a parent folder)'}")
