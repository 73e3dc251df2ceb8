"""Local datafiles against the server's: what counts as a change, and unified diffs that show it.

Both sides are compared as the server keeps them: the local file is parsed (includes expanded), the
server's datafile (`GET /v0/datasources/{name}.datasource`, `GET /v0/pipes/{name}.pipe`) too, and each
is rendered in canonical form without what the server does not keep in a datafile:

- data sources: TOKEN lines (tokens are pushed through /v0/tokens and compared there), FORWARD_QUERY and
  instructions the server does not implement (KAFKA_*, IMPORT_*, ...). Engine settings the file leaves
  out, but for the TTL, take the server's value (the server fills in defaults, e.g. a sorting key).
- pipes: TOKEN, TAGS, CACHE, VERSION, EXPORT_* and DEPLOYMENT_METHOD. A pipe without a typed node is
  published at its last node (as `tb push` does), so it compares as `TYPE endpoint` there. Node SQL
  compares with its common indentation removed (as the server stores it); copy settings the file
  leaves out take the server's value.
"""

from __future__ import annotations

import dataclasses
import difflib
import textwrap
from pathlib import Path

from tody.cli.client import ApiError, Client
from tody.cli.project.layout import Resource
from tody.datafiles import DatafileError, DatasourceFile, parse_datasource, render_datasource
from tody.datafiles.datasource import ENGINE_INSTRUCTIONS
from tody.datafiles.pipe import PipeFile, parse_pipe, render_pipe


def remote_path(kind: str, name: str) -> str:
    return f"/v0/datasources/{name}.datasource" if kind == "datasource" else f"/v0/pipes/{name}.pipe"


def fetch(client: Client, kind: str, name: str) -> str | None:
    """The server's datafile of a resource; None when it does not exist."""
    try:
        return client.request("GET", remote_path(kind, name)).text
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def parse(kind: str, text: str, filename: str | None = None) -> DatasourceFile | PipeFile:
    if kind == "datasource":
        return parse_datasource(text, filename=filename)
    return parse_pipe(text, filename=filename)


def normalise_sql(sql: str) -> str:
    """Node SQL as the server stores it: common indentation removed (below the `%` line for templates)."""
    text = sql.strip("\n").rstrip()
    lines = text.split("\n")
    if lines and lines[0].strip() == "%":
        return "%\n" + textwrap.dedent("\n".join(lines[1:])).strip("\n")
    return textwrap.dedent(text)


def for_server_datasource(local: DatasourceFile, remote: DatasourceFile | None = None) -> DatasourceFile:
    """What the server keeps of a local .datasource (see the module docstring)."""
    engine = local.engine
    if remote is not None:
        values = {}
        for attr in ENGINE_INSTRUCTIONS.values():
            if attr != "ttl" and getattr(engine, attr) is None:
                values[attr] = getattr(remote.engine, attr)
        engine = dataclasses.replace(engine, **values)
    return dataclasses.replace(
        local,
        engine=engine,
        description=local.description or None,
        tokens=[],
        extra=[],
        forward_query=None,
    )


def for_server_pipe(local: PipeFile, remote: PipeFile | None = None) -> PipeFile:
    """What the server keeps of a local .pipe, as it will be pushed (see the module docstring)."""
    nodes = []
    remote_nodes = {n.name: n for n in remote.nodes} if remote is not None else {}
    for node in local.nodes:
        other = remote_nodes.get(node.name)
        node = dataclasses.replace(
            node,
            sql=normalise_sql(node.sql),
            description=node.description or None,
            extra=[],
            engine=dict(node.engine),
            spelling={},
        )
        if other is not None and other.type == node.type:
            for attr in ("copy_schedule", "copy_mode"):
                if getattr(node, attr) is None:
                    setattr(node, attr, getattr(other, attr))
            if not node.engine:
                node.engine = dict(other.engine)
        nodes.append(node)
    if nodes and not any(n.type for n in nodes):
        nodes[-1].type = "endpoint"
    return PipeFile(nodes=nodes, description=local.description or None)


def canonical_remote(kind: str, text: str) -> DatasourceFile | PipeFile:
    parsed = parse(kind, text)
    if isinstance(parsed, PipeFile):
        return dataclasses.replace(
            parsed,
            nodes=[dataclasses.replace(n, spelling={}) for n in parsed.nodes],
            spelling={},
        )
    return parsed


def render(parsed: DatasourceFile | PipeFile) -> str:
    return render_datasource(parsed) if isinstance(parsed, DatasourceFile) else render_pipe(parsed)


@dataclasses.dataclass
class Comparison:
    local: str  # canonical text of the local file, as the server would keep it
    remote: str | None  # canonical text of the server's datafile; None when the resource does not exist
    local_file: DatasourceFile | PipeFile
    remote_file: DatasourceFile | PipeFile | None

    @property
    def exists(self) -> bool:
        return self.remote is not None

    @property
    def changed(self) -> bool:
        return self.remote is not None and self.local != self.remote

    def diff(self, label: str) -> str:
        return unified(self.remote or "", self.local, f"server/{label}", label)


def compare(res: Resource, remote_text: str | None) -> Comparison:
    """Compare a parsed local resource with the server's datafile text (None: not on the server)."""
    assert res.parsed is not None
    remote = None
    if remote_text is not None:
        try:
            remote = canonical_remote(res.kind, remote_text)
        except DatafileError as exc:  # pragma: no cover - the server renders what it parses
            raise ValueError(f"the server's datafile of '{res.name}' does not parse: {exc}") from None
    if isinstance(res.parsed, DatasourceFile):
        assert remote is None or isinstance(remote, DatasourceFile)
        local = for_server_datasource(res.parsed, remote)
    else:
        assert remote is None or isinstance(remote, PipeFile)
        local = for_server_pipe(res.parsed, remote)
    return Comparison(render(local), None if remote is None else render(remote), local, remote)


def unified(old: str, new: str, old_label: str, new_label: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_label, new_label
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def colour_diff(text: str) -> str:
    """A unified diff with + lines green and - lines red (click strips colours when not a terminal)."""
    import click

    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            out.append(click.style(line, bold=True))
        elif line.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            out.append(click.style(line, fg="red"))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        else:
            out.append(line)
    return "\n".join(out)


def relabel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
