"""`tody diff`: the project's datafiles against the server's, one unified diff per differing resource.

Resources compare as `tody push` compares them (see `compare`); TOKEN lines compare as scopes of the
server's tokens. Without FILES, resources the server has and the project does not are listed too.
Exit status: 0 when everything is equal, 1 when anything differs (or a file does not parse).
"""

from __future__ import annotations

from pathlib import Path

import click

from tody.cli.client import ApiError, Client, client_options
from tody.cli.project import compare as cmp
from tody.cli.project.layout import FOLDER_OPTION, find_root, load_project
from tody.cli.project.push import scope_text


def diff_project(client: Client, root: Path, files: list[Path] | None = None, echo=click.echo) -> bool:
    """Print the differences; True when there are none."""
    project = load_project(root, files)
    equal = True
    tokens: dict[str, set[str]] | None = None
    for res in project.resources:
        label = res.label(root)
        if res.parsed is None:
            equal = False
            echo(f"{label}: does not parse: {res.error}")
            continue
        comparison = cmp.compare(res, cmp.fetch(client, res.kind, res.name))
        if not comparison.exists:
            equal = False
            echo(f"only local: {label} ({res.kind} '{res.name}' is not on the server)")
            continue
        if comparison.changed:
            equal = False
            echo(cmp.colour_diff(comparison.diff(label)))
        if res.parsed.tokens:
            if tokens is None:
                tokens = _token_scopes(client)
            prefix = "DATASOURCES" if res.kind == "datasource" else "PIPES"
            for name, access in res.parsed.tokens:
                scope = f"{prefix}:{access}:{res.name}"
                if scope not in tokens.get(name, set()):
                    equal = False
                    have = "has no such token" if name not in tokens else "token lacks that scope"
                    echo(f"{label}: TOKEN {name} {access}: the server {have} ({scope})")
    if not files:
        local = {(r.kind, r.name) for r in project.resources}
        remote = [
            ("datasource", d["name"]) for d in client.json("GET", "/v0/datasources").get("datasources", [])
        ]
        remote += [("pipe", p["name"]) for p in client.json("GET", "/v0/pipes").get("pipes", [])]
        for kind, name in remote:
            if "." not in name and (kind, name) not in local:
                equal = False
                echo(f"only on the server: {kind} '{name}' (tody pull writes it)")
    echo("No differences" if equal else "Local and server differ")
    return equal


def _token_scopes(client: Client) -> dict[str, set[str]]:
    try:
        body = client.json("GET", "/v0/tokens")
    except ApiError as exc:
        if exc.status in (401, 403):
            return {}
        raise
    return {t["name"]: {scope_text(s) for s in t.get("scopes", [])} for t in body.get("tokens", [])}


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@FOLDER_OPTION
@client_options
def diff(files: tuple[Path, ...], folder: Path | None, host: str | None, token: str | None) -> None:
    """Show how the project's datafiles (or FILES) differ from the server's; exit 1 when they do."""
    root = find_root(folder)
    if not diff_project(Client(host, token, project_dir=root), root, list(files) or None):
        raise SystemExit(1)
