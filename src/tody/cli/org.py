"""`tody org`: the organization a user administers: its details, its workspaces and its admins.

ID defaults to the organization you administer, found through the organizations of your workspaces
(`GET /v0/user/workspaces/`, then `GET /v0/organizations/{id}` for each: the ones that answer).
"""

from __future__ import annotations

from urllib.parse import quote

import click

from tody.cli.client import ApiError, Client, user_options
from tody.cli.output import FORMAT_OPTION, YES, confirm, echo_json, show_listing


@click.group()
def org() -> None:
    """Your organization: details, workspaces and admins (organization admins act as admin in every
    workspace of it).

    \b
    tody org show
    tody org workspaces
    tody org admins add carol@example.com
    """


def _path(organization_id: str) -> str:
    return f"/v0/organizations/{quote(organization_id, safe='')}"


def _organization(client: Client, organization_id: str | None) -> dict:
    """The organization `organization_id`, or the only one the user administers."""
    if organization_id:
        return client.json("GET", _path(organization_id), as_user=True)
    listed = client.json("GET", "/v0/user/workspaces/", as_user=True)["workspaces"]
    found: dict[str, dict] = {}
    for oid in dict.fromkeys(w["organization_id"] for w in listed if w.get("organization_id")):
        try:
            found[oid] = client.json("GET", _path(oid), as_user=True)
        except ApiError as exc:
            if exc.status not in (403, 404):
                raise
    if not found:
        raise click.ClickException(
            "You administer no organization that has workspaces: pass its ID, or ask one of its admins"
        )
    if len(found) > 1:
        names = ", ".join(f"{o['name']} ({oid})" for oid, o in found.items())
        raise click.ClickException(f"You administer several organizations ({names}): pass one ID")
    return next(iter(found.values()))


ID = click.argument("organization_id", metavar="[ID]", required=False)


@org.command("show")
@ID
@FORMAT_OPTION
@user_options
def show(organization_id: str | None, fmt: str, host: str | None, user_token: str | None) -> None:
    """Show organization ID: name, admins and how many workspaces it has."""
    body = _organization(Client(host, user_token=user_token), organization_id)
    show_listing(
        body,
        fmt,
        ("field", "value"),
        lambda b: [
            ("name", b["name"]),
            ("id", b["id"]),
            ("created_at", b["created_at"][:19]),
            ("admins", "\n".join(a["email"] for a in b["admins"])),
            ("workspaces", b["workspaces"]),
        ],
    )


@org.command("workspaces")
@ID
@FORMAT_OPTION
@user_options
def workspaces(organization_id: str | None, fmt: str, host: str | None, user_token: str | None) -> None:
    """List the workspaces of organization ID."""
    client = Client(host, user_token=user_token)
    oid = _organization(client, organization_id)["id"]
    show_listing(
        client.json("GET", f"{_path(oid)}/workspaces", as_user=True),
        fmt,
        ("name", "id", "created_at"),
        lambda b: (
            (w["name"], w["id"], w["created_at"][:19])
            for w in sorted(b["workspaces"], key=lambda w: w["name"])
        ),
    )


@org.group("admins")
def admins() -> None:
    """The admins of the organization: they create users and act as admin in all its workspaces."""


ORG_OPTION = click.option("--organization-id", help="The organization (default: the one you administer).")
EMAILS = click.argument("emails", metavar="EMAIL...", nargs=-1, required=True)


def _change_admins(operation, emails, organization_id, fmt, host, user_token) -> None:
    client = Client(host, user_token=user_token)
    oid = _organization(client, organization_id)["id"]
    body = client.json(
        "PUT",
        f"{_path(oid)}/admins",
        params={"operation": operation, "users": ",".join(emails)},
        as_user=True,
    )
    if fmt == "json":
        echo_json(body)
    else:
        done = "now admins" if operation == "add" else "no longer admins"
        click.echo(f"{', '.join(emails)}: {done}; admins: {', '.join(a['email'] for a in body['admins'])}")


@admins.command("ls")
@ORG_OPTION
@FORMAT_OPTION
@user_options
def admins_ls(organization_id: str | None, fmt: str, host: str | None, user_token: str | None) -> None:
    """List the admins of the organization."""
    body = _organization(Client(host, user_token=user_token), organization_id)
    show_listing(
        {"admins": body["admins"]},
        fmt,
        ("email", "id"),
        lambda b: ((a["email"], a["id"]) for a in b["admins"]),
    )


@admins.command("add")
@EMAILS
@ORG_OPTION
@FORMAT_OPTION
@user_options
def admins_add(emails, organization_id, fmt, host, user_token) -> None:
    """Make users (by email) admins of the organization."""
    _change_admins("add", emails, organization_id, fmt, host, user_token)


@admins.command("rm")
@EMAILS
@YES
@ORG_OPTION
@FORMAT_OPTION
@user_options
def admins_rm(emails, yes, organization_id, fmt, host, user_token) -> None:
    """Make users (by email) no longer admins of the organization (they stay users and members)."""
    confirm(yes, f"Remove {', '.join(emails)} from the organization's admins?")
    _change_admins("remove", emails, organization_id, fmt, host, user_token)
