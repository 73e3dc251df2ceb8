"""`tody pull`: write the workspace's data sources and pipes into the project folder as datafiles.

Each resource goes where the project already keeps it (e.g. endpoints/top.pipe), else to
datasources/NAME.datasource or pipes/NAME.pipe. The server's datafile is written with a `TOKEN` line
for each static token that has a plain READ/APPEND scope on the resource, so a push of the pulled
folder recreates those scopes. A local file that already says the same (as `tody diff` compares) is
left as it is; one that says something else is not overwritten without `--force`. Shared data sources
(`workspace.name`) belong to their own workspace and are not pulled.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from tody.cli.client import ApiError, Client, client_options
from tody.cli.project import compare as cmp
from tody.cli.project.layout import Project, display, find_root, folder_option, load_project, read_resource

FOLDERS = {"datasource": "datasources", "pipe": "pipes"}
SUFFIX = {"datasource": ".datasource", "pipe": ".pipe"}


def resource_tokens(client: Client) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """{(kind, resource): [(token name, READ|APPEND)]} from the workspace's static tokens; {} when this
    token may not list tokens."""
    try:
        tokens = client.json("GET", "/v0/tokens").get("tokens", [])
    except ApiError as exc:
        if exc.status in (401, 403):
            return {}
        raise
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for tok in sorted(tokens, key=lambda t: str(t.get("name"))):
        name = tok.get("name")
        if not name:
            continue
        for scope in tok.get("scopes", []):
            kind, _, access = str(scope.get("type", "")).partition(":")
            resource = scope.get("resource")
            if not resource or scope.get("filter"):
                continue
            if kind == "DATASOURCES" and access in ("READ", "APPEND"):
                out.setdefault(("datasource", resource), []).append((name, access))
            elif kind == "PIPES" and access == "READ":
                out.setdefault(("pipe", resource), []).append((name, access))
    return out


def with_tokens(kind: str, text: str, tokens: list[tuple[str, str]]) -> str:
    if not tokens:
        return text
    parsed = cmp.parse(kind, text)
    parsed.tokens = [t for t in tokens if t not in parsed.tokens] + list(parsed.tokens)
    parsed.tokens.sort()
    return cmp.render(parsed)


def pull_project(
    client: Client, root: Path, *, force: bool = False, match: str | None = None, echo=click.echo
) -> bool:
    """Pull into the project at `root`; True when every resource was written or already the same."""
    pattern = re.compile(match) if match else None
    project: Project = load_project(root)
    local = {(r.kind, r.name): r for r in project.resources}
    names = [("datasource", d["name"]) for d in client.json("GET", "/v0/datasources").get("datasources", [])]
    names += [("pipe", p["name"]) for p in client.json("GET", "/v0/pipes").get("pipes", [])]
    names = [(k, n) for k, n in names if "." not in n and (pattern is None or pattern.search(n))]
    tokens = resource_tokens(client) if names else {}
    ok = True
    for kind, name in names:
        text = cmp.fetch(client, kind, name)
        if text is None:  # removed meanwhile
            continue
        declared = tokens.get((kind, name), [])
        existing = local.get((kind, name))
        path = existing.path if existing is not None else root / FOLDERS[kind] / f"{name}{SUFFIX[kind]}"
        label = display(path, root)
        if path.exists():
            current = existing if existing is not None else read_resource(path, root)
            same = current.parsed is not None and not cmp.compare(current, text).changed
            if same and set(declared) <= set(current.parsed.tokens):
                echo(f"{'unchanged':<11} {label}")
                continue
            if not force:
                ok = False
                echo(
                    f"{'refused':<11} {label}  (the local file differs from the server: pull --force "
                    "overwrites it; tody diff shows how)"
                )
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        status = "updated" if path.exists() else "written"
        path.write_text(with_tokens(kind, text, declared))
        echo(f"{status:<11} {label}")
    if not names:
        echo("Nothing to pull" + (f" matching {match!r}" if match else ""))
    return ok


@click.command()
@click.option("--force", is_flag=True, help="Overwrite local files that differ from the server.")
@click.option("--match", help="Only resources whose name matches this regular expression.")
@folder_option(exists=False)
@client_options
def pull(force: bool, match: str | None, folder: Path | None, host: str | None, token: str | None) -> None:
    """Write the workspace's data sources and pipes into the project folder as datafiles."""
    if match:
        try:
            re.compile(match)
        except re.error as exc:
            raise click.BadParameter(f"not a regular expression: {exc}", param_hint="--match") from None
    root = find_root(folder)
    root.mkdir(parents=True, exist_ok=True)
    if not pull_project(Client(host, token, project_dir=root), root, force=force, match=match):
        raise SystemExit(1)
