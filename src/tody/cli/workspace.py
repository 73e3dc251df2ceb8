"""`tody workspace`: the workspace of the token. One command per subject (limits; more to come)."""

from __future__ import annotations

import click

from tody.cli.client import FORMAT_OPTION, Client, client_options, show_listing


@click.group()
def workspace() -> None:
    """The workspace of the token."""


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
