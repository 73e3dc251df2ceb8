"""Which pipes read which data sources (`GET /v0/dependencies`, what `tb dependencies` prints)."""

from __future__ import annotations

import re

from tody.catalog.store import Catalog
from tody.services.errors import BadRequest
from tody.services.pipes import reads
from tody.services.tokens import Principal


def dependencies(
    catalog: Catalog,
    principal: Principal,
    *,
    datasource: str | None = None,
    pipe: str | None = None,
    match: str | None = None,
    no_deps: bool = False,
    recursive: bool = False,
) -> dict:
    """{data source: [pipes reading it]}. `recursive` adds the pipes reading those pipes and what
    reads the data sources their materialized nodes write; `no_deps` keeps the unread data sources."""
    ws = principal.workspace.id
    pipes = {p.name: p for p in catalog.pipes(ws).values() if principal.can_read_pipe(p.name)}
    readers: dict[str, set[str]] = {}
    for p in pipes.values():
        for name in reads(p):
            readers.setdefault(name, set()).add(p.name)
    targets = {
        p.name: {n.options.get("datasource") for n in p.nodes if n.type == "materialized"} - {None}
        for p in pipes.values()
    }
    try:
        pattern = re.compile(match) if match else None
    except re.error as exc:
        raise BadRequest(f"'match' is not a valid regular expression: {exc}") from None
    out: dict[str, list[str]] = {}
    for name in sorted(catalog.datasources(ws)):
        if not principal.can_describe_datasource(name):
            continue
        if (datasource and name != datasource) or (pattern and not pattern.search(name)):
            continue
        found = set(readers.get(name, ()))
        frontier = list(found) if recursive else []
        while frontier:
            current = frontier.pop()
            more = set(readers.get(current, ()))
            for target in targets.get(current, ()):
                more |= readers.get(target, set())
            frontier.extend(more - found)
            found |= more
        if pipe and pipe not in found:
            continue
        if no_deps and found:
            continue
        out[name] = sorted(found)
    return {"dependencies": out, "incompatible_datasources": {}}
