"""`tody workspace`: the workspaces of a user (ls, create, use, rm), their members and roles, and the
request limits of the token's workspace.

Listing, creating, using and removing workspaces act as a user (the user token); members act on the
token's workspace (or --workspace), with the user token when there is one, else the workspace token.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import click

from tody.cli import config as cli_config
from tody.cli.client import USER_TOKEN_OPTION, Client, acting_on, client_options, user_options
from tody.cli.output import FORMAT_OPTION, VALUE_FORMAT, YES, confirm, echo_json, note, show_listing

ROLES = ("admin", "guest", "viewer")


def _path(workspace: str) -> str:
    return f"/v0/workspaces/{quote(workspace, safe='')}"


@click.group()
def workspace() -> None:
    """Workspaces: yours, the current one, their members and roles, their limits.

    \b
    tody workspace ls                                   # every workspace of the user, with its role
    tody workspace create sales                         # prints your token for it
    tody workspace use sales                            # its token becomes the CLI's (config file)
    tody workspace members add bob@example.com --role viewer
    tody workspace members set-role bob@example.com guest
    tody workspace rm sales

    The user token comes from --user-token, TODY_USER_TOKEN or the CLI config (`workspace use` stores
    it); the config file is $TODY_CONFIG, else $XDG_CONFIG_HOME/tody/config.json (~/.config/…).
    """


# -- the workspaces of a user ------------------------------------------------------------------------


@workspace.command("ls")
@FORMAT_OPTION
@client_options
@USER_TOKEN_OPTION
def ls(fmt: str, host: str | None, token: str | None, user_token: str | None) -> None:
    """List the user's workspaces with the user's role in each (* marks the current one).

    Without a user token, the token's own workspace."""
    client = Client(host, token, user_token=user_token)
    body = client.json("GET", "/v0/user/workspaces/", as_user=client.has_user_token)
    current = client.known_token
    show_listing(
        body,
        fmt,
        ("", "name", "role", "id", "organization_id"),
        lambda b: (
            (
                "*" if current and w.get("token") == current else "",
                w["name"],
                w["role"],
                w["id"],
                w.get("organization_id") or "",
            )
            for w in sorted(b["workspaces"], key=lambda w: w["name"])
        ),
    )


@workspace.command("create")
@click.argument("name")
@click.option("--organization-id", help="Organization to create it in (default: the one you administer).")
@VALUE_FORMAT
@user_options
def create(name: str, organization_id: str | None, fmt: str, host: str | None, user_token: str | None):
    """Create workspace NAME (you become its admin) and print your token for it.

    \b
    TOKEN=$(tody workspace create sales)        # or: tody workspace create sales && tody workspace use sales
    """
    params = {"name": name}
    if organization_id:
        params["assign_to_organization_id"] = organization_id
    body = Client(host, user_token=user_token).json("POST", "/v0/workspaces", params=params, as_user=True)
    note(f"Workspace '{body['name']}' created ({body['id']}); you are its admin")
    if fmt == "json":
        echo_json(body)
    else:
        click.echo(body["token"])


@workspace.command("use")
@click.argument("name")
@user_options
def use(name: str, host: str | None, user_token: str | None) -> None:
    """Make workspace NAME (name or id) the current one: your token for it, the host and the user
    token are written to the CLI config, and later commands use them."""
    client = Client(host, user_token=user_token)
    body = client.json("GET", _path(name), params={"with_token": "true"}, as_user=True)
    path = cli_config.remember(
        client.host,
        token=body["token"],
        user_token=client.user_token,
        workspace=body["name"],
        workspace_id=body["id"],
    )
    click.echo(f"Using workspace '{body['name']}' ({body['role']}) on {client.host} (saved in {path})")
    if os.environ.get("TODY_TOKEN"):
        note("Note: TODY_TOKEN is set and wins over the config; unset it to use this workspace")


@workspace.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Even when other workspaces' pipes read data sources it shares.")
@YES
@client_options
@USER_TOKEN_OPTION
def rm(name: str, force: bool, yes: bool, host: str | None, token: str | None, user_token: str | None):
    """Remove workspace NAME (name or id) with its data sources, pipes, tokens, members and stats.

    Needs an admin of the workspace: the user token when there is one, else an admin token of it."""
    confirm(yes, f"Remove workspace '{name}' and everything in it? This cannot be undone")
    client = Client(host, token, user_token=user_token)
    params = {"force": "true"} if force else {}
    client.request("DELETE", _path(name), params=params, as_user=client.has_user_token)
    click.echo(f"Workspace '{name}' removed")
    saved = cli_config.saved_for(cli_config.load(), client.host)
    if name in (saved.get("workspace"), saved.get("workspace_id")):
        cli_config.remember(client.host, current=False, token=None, workspace=None, workspace_id=None)
        note("It was the current workspace: run `tody workspace use NAME` to pick another")


# -- members -----------------------------------------------------------------------------------------


@workspace.group("members")
def members() -> None:
    """Members of a workspace and their roles.

    \b
    admin   everything in the workspace, members and tokens included
    guest   works with data: data sources, pipes, ingestion, queries; no members, tokens or settings
    viewer  reads: data sources, pipes, endpoints, /v0/sql

    They act on the token's workspace, or on --workspace; changes need an admin of it (the user token
    when there is one, else the workspace token)."""


WORKSPACE_OPTION = click.option(
    "--workspace", "ws", metavar="NAME", help="Workspace name or id (default: the token's)."
)


def _show_members(body: dict, fmt: str) -> None:
    show_listing(
        body,
        fmt,
        ("email", "role", "id"),
        lambda b: ((u["email"], u["role"], u["id"]) for u in sorted(b["users"], key=lambda u: u["email"])),
    )


def _change(ws, operation, emails, role, fmt, host, token, user_token) -> dict:
    client = Client(host, token, user_token=user_token)
    target, as_user = acting_on(client, ws)
    params = {"operation": operation, "users": ",".join(emails)}
    if role:
        params["new_role" if operation == "change_role" else "role"] = role
    body = client.json("PUT", f"{_path(target)}/users/", params=params, as_user=as_user)
    if fmt == "json":
        echo_json(body)
    return body


@members.command("ls")
@WORKSPACE_OPTION
@FORMAT_OPTION
@client_options
@USER_TOKEN_OPTION
def members_ls(ws: str | None, fmt: str, host: str | None, token: str | None, user_token: str | None):
    """List the members of the workspace with their roles."""
    client = Client(host, token, user_token=user_token)
    target, as_user = acting_on(client, ws)
    _show_members(client.json("GET", f"{_path(target)}/users", as_user=as_user), fmt)


EMAILS = click.argument("emails", metavar="EMAIL...", nargs=-1, required=True)


@members.command("add")
@EMAILS
@click.option("--role", type=click.Choice(ROLES), default="guest", show_default=True)
@WORKSPACE_OPTION
@FORMAT_OPTION
@client_options
@USER_TOKEN_OPTION
def members_add(emails, role, ws, fmt, host, token, user_token) -> None:
    """Add users (by email) to the workspace with --role; members already there take that role."""
    _change(ws, "add", emails, role, fmt, host, token, user_token)
    if fmt != "json":
        click.echo(f"Added {', '.join(emails)} as {role}")


@members.command("rm")
@EMAILS
@YES
@WORKSPACE_OPTION
@FORMAT_OPTION
@client_options
@USER_TOKEN_OPTION
def members_rm(emails, yes, ws, fmt, host, token, user_token) -> None:
    """Remove members (by email) from the workspace: their personal tokens stop working at once."""
    confirm(yes, f"Remove {', '.join(emails)} from the workspace?")
    _change(ws, "remove", emails, None, fmt, host, token, user_token)
    if fmt != "json":
        click.echo(f"Removed {', '.join(emails)}")


@members.command("set-role")
@EMAILS
@click.argument("role", type=click.Choice(ROLES))
@WORKSPACE_OPTION
@FORMAT_OPTION
@client_options
@USER_TOKEN_OPTION
def members_set_role(emails, role, ws, fmt, host, token, user_token) -> None:
    """Give members (by email) ROLE: what their personal tokens may do changes at once.

    \b
    tody workspace members set-role bob@example.com carol@example.com viewer
    """
    _change(ws, "change_role", emails, role, fmt, host, token, user_token)
    if fmt != "json":
        click.echo(f"{', '.join(emails)} now {'is' if len(emails) == 1 else 'are'} {role}")


# -- limits ------------------------------------------------------------------------------------------


class Rps(click.ParamType):
    """Requests per second: a whole number (0 = no limit), or `default` for the server's default."""

    name = "N|default"

    def convert(self, value, param, ctx) -> str:
        text = str(value).strip()
        if text.lower() in ("", "default"):
            return ""  # the API's way back to the server default
        if not text.isdigit():
            self.fail(f"'{value}' is not a whole number of requests per second (or 'default')", param, ctx)
        return text


RPS = Rps()


def _endpoint(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        pipe, eq, value = item.partition("=")
        if not eq or not pipe.strip():
            raise click.BadParameter(f"'{item}': give it as PIPE=N (or PIPE=default)")
        out[pipe.strip()] = RPS.convert(value, param, ctx)
    return out


def _shown(value: int) -> str:
    return f"{value}" if value else "0 (no limit)"


@workspace.command("limits")
@click.option("--token-rps", type=RPS, help="Requests per second one token may make (0 = no limit).")
@click.option("--endpoint-rps", type=RPS, help="Requests per second one endpoint may serve (0 = no limit).")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="PIPE=N",
    callback=_endpoint,
    help="Requests per second the endpoint of PIPE may serve, instead of --endpoint-rps (repeatable).",
)
@FORMAT_OPTION
@client_options
def limits(
    token_rps: str | None,
    endpoint_rps: str | None,
    endpoints: dict[str, str],
    fmt: str,
    host: str,
    token: str | None,
) -> None:
    """Show the workspace's request limits; with options, set them first (needs an ADMIN token).

    \b
    Any value may be 'default' to go back to the server's (TODY_TOKEN_RATE_LIMIT,
    TODY_ENDPOINT_RATE_LIMIT):
      tody workspace limits --token-rps 50 --endpoint top_events=200
      tody workspace limits --endpoint top_events=default
    """
    changes = {f"endpoint_rps.{pipe}": value for pipe, value in endpoints.items()}
    for key, value in (("token_rps", token_rps), ("endpoint_rps", endpoint_rps)):
        if value is not None:
            changes[key] = value
    client = Client(host, token)
    if changes:
        body = client.json("PUT", "/v0/workspace/limits", params=changes)
    else:
        body = client.json("GET", "/v0/workspace/limits")
    show_listing(
        body,
        fmt,
        ("limit", "requests per second"),
        lambda b: [
            ("token_rps", _shown(b["token_rps"])),
            ("endpoint_rps", _shown(b["endpoint_rps"])),
            *((f"endpoint {pipe}", _shown(rps)) for pipe, rps in sorted(b["endpoints"].items())),
        ],
    )
