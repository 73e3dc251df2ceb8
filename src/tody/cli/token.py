"""`tody token`: list, create (static or JWT), remove, refresh and read tokens, as `tb token` does.

Secrets go to stdout alone (`VALUE=$(tody token create static …)` works); what the command did goes
to stderr.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from urllib.parse import quote

import click

from tody.cli.client import ApiError, Client, client_options
from tody.cli.output import (
    FORMAT_OPTION,
    MATCH_OPTION,
    VALUE_FORMAT,
    YES,
    confirm,
    echo_json,
    matching,
    note,
    show_listing,
)


def _path(name: str) -> str:
    return f"/v0/tokens/{quote(name, safe='')}"


def _scope_text(scope: dict) -> str:
    return ":".join(scope[k] for k in ("type", "resource", "filter") if scope.get(k))


@click.group()
def token() -> None:
    """Manage tokens: static tokens with scopes, and JWTs for your users.

    \b
    tody token ls
    tody token create static reader --scope DATASOURCES:READ --resource events
    tody token create jwt tenant_42 --ttl 1h --scope PIPES:READ --resource top --fixed-params tenant=42
    tody token copy reader
    """


@token.command("ls")
@MATCH_OPTION
@FORMAT_OPTION
@client_options
def ls(match: str | None, fmt: str, host: str, token: str | None) -> None:
    """List the static tokens of the workspace, with their scopes and values."""
    body = Client(host, token).json("GET", "/v0/tokens")
    body["tokens"] = matching(body["tokens"], match)
    if fmt == "json":
        echo_json(body)
        return
    from rich.console import Console
    from rich.table import Column, Table

    # the value is cut to the terminal's width: `tody token copy NAME` prints it whole
    rows = [
        (t["name"], "\n".join(_scope_text(s) for s in t["scopes"]), t.get("token", "(hidden)"))
        for t in body["tokens"]
    ]
    console = Console()
    name_w, scopes_w, token_w = (
        max((len(line) for row in rows for line in row[i].splitlines()), default=0) for i in range(3)
    )
    name_w, scopes_w = max(name_w, 4), min(max(scopes_w, 6), 40)
    token_w = max(12, min(token_w, console.width - name_w - scopes_w - 10))  # 10: borders and padding
    table = Table(
        Column("name", width=name_w, no_wrap=True),
        Column("scopes", width=scopes_w),
        Column("token", width=token_w, no_wrap=True, overflow="ellipsis"),
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


# -- create ------------------------------------------------------------------------------------------


@token.group("create")
def create() -> None:
    """Create a static token (lives until removed) or sign a JWT (expires).

    \b
    Static tokens take any scope: ADMIN, TOKENS, WORKSPACE:READ_ALL, DATASOURCES:CREATE,
    PIPES:CREATE, and DATASOURCES:READ|APPEND|DROP or PIPES:READ|DROP on a resource.
    JWTs take PIPES:READ and DATASOURCES:READ only; they are signed with the workspace admin
    token and never stored (refreshing the admin token revokes them all).
    """


class _KeepsOptionOrder(click.Command):
    """Click groups the values of each option; `token create static` pairs each --resource and
    --filter with the --scope before it, so it records the order the options came in."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        ctx.meta["tody.token.option_order"] = [p.name for p in order]
        return super().parse_args(ctx, args)


def static_scopes(
    order: list[str], scopes: tuple[str, ...], resources: tuple[str, ...], filters: tuple[str, ...]
) -> list[str]:
    """Scope strings `TYPE[:resource[:filter]]` from --scope/--resource/--filter in command-line order."""
    values = {"scopes": iter(scopes), "resources": iter(resources), "filters": iter(filters)}
    groups: list[dict[str, str]] = []
    for dest in order:
        if dest not in values:
            continue
        value, name = next(values[dest]), dest.removesuffix("s")
        if name == "scope":
            groups.append({"scope": value})
        elif not groups:
            raise click.UsageError(f"--{name} '{value}' must come after the --scope it belongs to")
        elif name in groups[-1]:
            raise click.UsageError(f"--scope {groups[-1]['scope']} has more than one --{name}")
        else:
            groups[-1][name] = value
    out = []
    for group in groups:
        scope, resource, flt = group["scope"], group.get("resource"), group.get("filter")
        named = scope.count(":") >= 2  # `DATASOURCES:READ:events` already names its resource
        if resource is not None and named:
            raise click.UsageError(f"--scope {scope} already names its resource; drop --resource {resource}")
        if flt is not None and resource is None and not named:
            raise click.UsageError(f"--filter needs a resource: --scope {scope} --resource NAME --filter …")
        out.append(":".join(p for p in (scope, resource, flt) if p is not None))
    return out


@create.command("static", cls=_KeepsOptionOrder)
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A scope (repeatable), e.g. TOKENS, DATASOURCES:READ, or in full: DATASOURCES:READ:events.",
)
@click.option(
    "--resource", "resources", multiple=True, help="The data source or pipe of the --scope before it."
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="SQL row filter of the --scope before it (DATASOURCES:READ and PIPES:READ), e.g. \"country = 'ES'\".",
)
@click.option("--description", help="What the token is for.")
@VALUE_FORMAT
@client_options
@click.pass_context
def create_static(
    ctx: click.Context,
    name: str,
    scopes: tuple[str, ...],
    resources: tuple[str, ...],
    filters: tuple[str, ...],
    description: str | None,
    fmt: str,
    host: str,
    token: str | None,
) -> None:
    """Create static token NAME and print its value; when NAME exists, replace its scopes (as tb does).

    \b
    Each --resource and --filter belongs to the --scope before it:
      tody token create static reader --scope DATASOURCES:READ --resource events \\
          --filter "country = 'ES'" --scope PIPES:READ --resource top_events
      tody token create static manager --scope TOKENS --description "rotates tokens"
    """
    texts = static_scopes(ctx.meta.get("tody.token.option_order", []), scopes, resources, filters)
    client = Client(host, token)
    params = [("scope", s) for s in texts] + (
        [("description", description)] if description is not None else []
    )
    try:
        client.json("GET", _path(name))
        exists = True
    except ApiError as exc:
        if exc.status != 404:
            raise
        exists = False
    if exists:
        body = client.json("PUT", _path(name), params=params)
        note(f"Token '{name}' updated: its scopes are now {', '.join(texts)}")
    else:
        body = client.json("POST", "/v0/tokens", params=[("name", name), *params])
        note(f"Token '{name}' created")
    _print_value(body, fmt)


def _print_value(body: dict, fmt: str) -> None:
    if fmt == "json":
        echo_json(body)
    elif "token" in body:
        click.echo(body["token"])
    else:
        note("(its value is only shown to admin tokens)")


_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_ttl(text: str) -> int:
    """A time to live in seconds: `3600`, `90s`, `30m`, `1h`, `1h30m`, `2d`, `1w` (also `30min`, `2 days`)."""
    raw = text.strip().lower()
    if re.fullmatch(r"\d+", raw):
        seconds = float(raw)
    elif re.fullmatch(rf"(?:{_PART.pattern}\s*)+", raw):
        seconds = 0.0
        for number, unit in _PART.findall(raw):
            factor = _UNITS.get(unit) or _UNITS.get(unit.removesuffix("s"))
            if factor is None:
                raise ValueError(f"unknown unit '{unit}' (use s, m, h, d or w)")
            seconds += float(number) * factor
    else:
        raise ValueError("give a number of seconds or a duration like 30m, 1h, 2d")
    if seconds < 1:
        raise ValueError("it must be at least one second")
    return int(seconds)


def _ttl(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_ttl(value)
    except ValueError as exc:
        raise click.BadParameter(f"'{value}': {exc}") from None


def parse_fixed_params(text: str) -> dict[str, str]:
    """`k=v,k2=v2` → {"k": "v", "k2": "v2"}; an empty text fixes nothing."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise click.UsageError(f"--fixed-params '{text}': give them as key=value,key2=value2")
        out[key.strip()] = value.strip()
    return out


def jwt_scopes(
    scopes: tuple[str, ...], resources: tuple[str, ...], fixed: tuple[str, ...], filters: tuple[str, ...]
) -> list[dict]:
    """The JWT's scope claims: the n-th --resource, --fixed-params and --filter go with the n-th --scope."""
    if len(scopes) != len(resources):
        raise click.UsageError(
            f"Give one --resource per --scope: got {len(scopes)} --scope and {len(resources)} --resource"
        )
    for option, given in (("--fixed-params", fixed), ("--filter", filters)):
        if len(given) > len(scopes):
            raise click.UsageError(f"More {option} ({len(given)}) than --scope ({len(scopes)})")
    out = []
    for i, (kind, resource) in enumerate(zip(scopes, resources, strict=True)):
        claim: dict = {"type": kind, "resource": resource}
        params = parse_fixed_params(fixed[i]) if i < len(fixed) else {}
        if params:
            if claim["type"] != "PIPES:READ":
                raise click.UsageError(f"--fixed-params only go with a PIPES:READ scope, not {kind}")
            claim["fixed_params"] = params
        if i < len(filters) and filters[i].strip():
            claim["filter"] = filters[i]
        out.append(claim)
    return out


@create.command("jwt")
@click.argument("name")
@click.option(
    "--ttl", required=True, callback=_ttl, help="Time to live: seconds or a duration like 30m, 1h, 2d, 1w."
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["PIPES:READ", "DATASOURCES:READ"]),
    help="Scope of the JWT (repeatable; one --resource each).",
)
@click.option(
    "--resource", "resources", multiple=True, required=True, help="Pipe or data source of the n-th --scope."
)
@click.option(
    "--fixed-params",
    "fixed",
    multiple=True,
    metavar="K=V,K2=V2",
    help="Params the n-th (PIPES:READ) scope fixes, whatever the request says; '' for none.",
)
@click.option("--filter", "filters", multiple=True, help="SQL row filter of the n-th scope; '' for none.")
@click.option("--rps", type=click.IntRange(min=1), help="Requests per second this JWT may make.")
@VALUE_FORMAT
@client_options
def create_jwt(
    name: str,
    ttl: int,
    scopes: tuple[str, ...],
    resources: tuple[str, ...],
    fixed: tuple[str, ...],
    filters: tuple[str, ...],
    rps: int | None,
    fmt: str,
    host: str,
    token: str | None,
) -> None:
    """Sign a JWT named NAME that expires after --ttl, and print it.

    \b
    The n-th --resource, --fixed-params and --filter go with the n-th --scope:
      tody token create jwt tenant_42 --ttl 1h --scope PIPES:READ --resource top_events \\
          --fixed-params tenant=42 --rps 10
    """
    body: dict = {"scopes": jwt_scopes(scopes, resources, fixed, filters)}
    if rps is not None:
        body["limits"] = {"rps": rps}
    expires = int(time.time()) + ttl
    res = Client(host, token).json(
        "POST", "/v0/tokens", params={"name": name, "expiration_time": str(expires)}, json=body
    )
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S")
    note(f"JWT '{name}' signed; it expires at {when} UTC")
    _print_value({**res, "expiration_time": expires} if fmt == "json" else res, fmt)


# -- one token ---------------------------------------------------------------------------------------


@token.command("rm")
@click.argument("name")
@YES
@client_options
def rm(name: str, yes: bool, host: str, token: str | None) -> None:
    """Remove token NAME (name or id): its value stops working at once."""
    confirm(yes, f"Remove token '{name}'? Whatever uses it will get 403")
    Client(host, token).request("DELETE", _path(name))
    click.echo(f"Token '{name}' removed")


@token.command("refresh")
@click.argument("name")
@YES
@VALUE_FORMAT
@client_options
def refresh(name: str, yes: bool, fmt: str, host: str, token: str | None) -> None:
    """Give token NAME a new value and print it; the old value stops working at once.

    Refreshing the workspace admin token also revokes every JWT signed with it."""
    confirm(yes, f"Refresh token '{name}'? Its current value stops working")
    body = Client(host, token).json("POST", f"{_path(name)}/refresh")
    note(f"Token '{name}' refreshed")
    _print_value(body, fmt)


@token.command("scopes")
@click.argument("name")
@FORMAT_OPTION
@client_options
def scopes(name: str, fmt: str, host: str, token: str | None) -> None:
    """List the scopes of token NAME."""
    body = Client(host, token).json("GET", _path(name))
    show_listing(
        {"scopes": body["scopes"]},
        fmt,
        ("type", "resource", "filter"),
        lambda b: ((s["type"], s.get("resource", ""), s.get("filter", "")) for s in b["scopes"]),
    )


@token.command("copy")
@click.argument("name")
@client_options
def copy(name: str, host: str, token: str | None) -> None:
    """Print the value of token NAME and nothing else (for scripts: TOKEN=$(tody token copy NAME))."""
    body = Client(host, token).json("GET", _path(name))
    if "token" not in body:
        raise click.ClickException(f"The value of token '{name}' is only shown to admin tokens")
    click.echo(body["token"])
