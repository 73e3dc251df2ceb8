"""`tody check`: validate a project offline (no server).

- Syntax: every datafile parses (includes resolved), and no two files use one name.
- References: every table a node reads is a data source of the project (or its `_quarantine`), an
  earlier node of the same pipe, another pipe of the project, a service data source (`tinybird.*`,
  `organization.*`) or a data source shared from another workspace (`<workspace>.<name>`). A
  materialized view's DATASOURCE and a copy's TARGET_DATASOURCE are data sources of the project.
- Templates: each node's template parses and renders with sample values (each required parameter's
  example, else a placeholder of its type); a template's own `error()` is not a problem.

Problems are printed as `file:line: message` (the line when it is known).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from tody.cli.project.graph import node_reads
from tody.cli.project.layout import FOLDER_OPTION, Project, Resource, duplicates, find_root, load_project
from tody.datafiles.pipe import PipeFile

_AT_LINE = re.compile(r"\bat line (\d+)")


def sql_start_line(text: str, node: str) -> int | None:
    """The file line (1-based) of the first line of node `node`'s SQL block, when it can be found."""
    lines = text.splitlines()
    start = next(
        (i for i, ln in enumerate(lines) if re.fullmatch(rf"NODE\s+[\"']?{re.escape(node)}[\"']?\s*", ln)),
        None,
    )
    if start is None:
        return None
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("NODE "):
            return None
        if re.fullmatch(r"SQL\s*>\s*", lines[i]):
            for j in range(i + 1, len(lines)):
                if lines[j].strip():
                    return j + 1
            return None
    return None


def check_pipe(res: Resource, label: str, names: dict[str, str]) -> list[str]:
    """Problems of one parsed pipe; `names` is {resource name: kind} for the whole project."""
    assert isinstance(res.parsed, PipeFile)
    problems: list[str] = []
    order = [n.name for n in res.parsed.nodes]
    for index, node in enumerate(res.parsed.nodes):
        start = sql_start_line(res.text, node.name)
        where = f"{label}:{start}" if start else label
        reads = node_reads(node)
        if reads.template_error is not None:
            message = str(reads.template_error)
            m = _AT_LINE.search(message)
            line_at = f"{label}:{start + int(m.group(1)) - 1}" if start and m else where
            problems.append(f"{line_at}: node {node.name!r}: {message}")
            continue
        if reads.sql_error is not None:
            problems.append(f"{where}: node {node.name!r}: {reads.sql_error}")
            continue
        for table in reads.tables:
            problem = _reference_problem(table, node.name, order[:index], order[index + 1 :], res.name, names)
            if problem:
                problems.append(f"{where}: node {node.name!r} {problem}")
        targets = (
            ("DATASOURCE", node.datasource, node.type == "materialized" and not node.engine),
            ("TARGET_DATASOURCE", node.target_datasource, node.type == "copy"),
        )
        for key, target, required in targets:
            if target and required and names.get(target) != "datasource":
                problems.append(
                    f"{where}: node {node.name!r}: {key} {target} is not a data source of the project"
                )
    return problems


def _reference_problem(
    table: str, node: str, earlier: list[str], later: list[str], pipe: str, names: dict[str, str]
) -> str | None:
    if table in earlier:
        return None
    if table == node:
        return f"reads itself ({table!r})"
    if table in later:
        return f"reads node {table!r}, which comes after it (a node reads only earlier nodes)"
    if table == pipe:
        return f"reads its own pipe {table!r}"
    if table in names:
        return None
    if table.endswith("_quarantine") and names.get(table[: -len("_quarantine")]) == "datasource":
        return None
    if "." in table:  # tinybird.* / organization.* service data sources, or <workspace>.<name> shared
        return None
    return (
        f"reads {table!r}, which is not a data source or pipe of the project, nor an earlier node of "
        "this pipe"
    )


def check_project(project: Project, only: list[Path] | None = None) -> list[str]:
    """Every problem of the project (or of the files `only`, checked against the whole project)."""
    root = project.root
    selected = project.resources
    if only:
        wanted = {p.resolve() for p in only}
        selected = [r for r in project.resources if r.path in wanted]
    problems: list[str] = []
    for res in selected:
        if res.error is not None:
            err = res.error
            where = f"{res.label(root)}:{err.line}" if err.line else res.label(root)
            problems.append(f"{where}: {err.reason}")
    problems.extend(duplicates(project.resources, root))
    names = {r.name: r.kind for r in project.resources}
    for res in selected:
        if res.kind == "pipe" and res.parsed is not None:
            problems.extend(check_pipe(res, res.label(root), names))
    return problems


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@FOLDER_OPTION
def check(files: tuple[Path, ...], folder: Path | None) -> None:
    """Validate the project's datafiles (or FILES) offline: syntax, references, template parameters."""
    root = find_root(folder)
    project = load_project(root)
    targets = None
    if files:
        given = load_project(root, list(files)).resources
        known = {r.path for r in project.resources}
        # files outside the project's folders are checked too, against the project
        project.resources.extend(r for r in given if r.path not in known)
        targets = [r.path for r in given]
    problems = check_project(project, targets)
    checked = len(targets) if targets is not None else len(project.resources)
    if problems:
        for problem in problems:
            click.echo(problem)
        click.echo(f"{len(problems)} problem(s) in {checked} file(s)")
        raise SystemExit(1)
    click.echo(f"{checked} file(s) OK")
