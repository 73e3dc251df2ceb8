"""`tody user`: create, list and remove users, as an organization admin (with a user token).

A new user's token goes to stdout alone (`TOKEN=$(tody user create …)` works); what the command did
goes to stderr.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from tody.cli.client import Client, user_options
from tody.cli.output import FORMAT_OPTION, VALUE_FORMAT, YES, confirm, echo_json, note, show_listing


@click.group()
def user() -> None:
    """Users: an email, a password and a user token. Organization admins manage them.

    \b
    tody user create bob@example.com              # asks for the password; prints bob's user token
    tody user ls
    tody user rm bob@example.com

    The user token comes from --user-token, TODY_USER_TOKEN or the CLI config (see `tody workspace use`);
    `tody serve` prints the first user's at first start.
    """


@user.command("create")
@click.argument("email")
@click.option("--password", help="At least 8 characters (asked for, twice, when not given).")
@VALUE_FORMAT
@user_options
def create(email: str, password: str | None, fmt: str, host: str | None, user_token: str | None) -> None:
    """Create user EMAIL and print the new user's token (alone on stdout: TOKEN=$(tody user create …))."""
    if password is None:  # the prompts go to stderr, so stdout stays the token alone
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    body = Client(host, user_token=user_token).json(
        "POST", "/v0/users", json={"email": email, "password": password}, as_user=True
    )
    note(f"User {body['email']} created ({body['id']})")
    if fmt == "json":
        echo_json(body)
    else:
        click.echo(body["token"])


@user.command("ls")
@FORMAT_OPTION
@user_options
def ls(fmt: str, host: str | None, user_token: str | None) -> None:
    """List the users of the server."""
    show_listing(
        Client(host, user_token=user_token).json("GET", "/v0/users", as_user=True),
        fmt,
        ("email", "id", "created_at"),
        lambda b: (
            (u["email"], u["id"], u["created_at"][:19]) for u in sorted(b["users"], key=lambda u: u["email"])
        ),
    )


@user.command("rm")
@click.argument("email")
@YES
@user_options
def rm(email: str, yes: bool, host: str | None, user_token: str | None) -> None:
    """Remove user EMAIL (email or id): their user token and personal tokens stop working."""
    confirm(yes, f"Remove user {email}? Their tokens stop working")
    Client(host, user_token=user_token).request("DELETE", f"/v0/users/{quote(email, safe='')}", as_user=True)
    click.echo(f"User {email} removed")
