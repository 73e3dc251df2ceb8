"""A project folder in Tinybird's layout, and its datafiles read into resources.

    .tinyb            project config (host, token, workspace): see `tinyb`
    datasources/      *.datasource (also datasources/fixtures/ for fixtures, as the tb CLI reads them)
    pipes/            *.pipe; endpoints/, materializations/, copies/ and sinks/ hold pipes too
    includes/         *.incl, pulled in by INCLUDE lines
    fixtures/         <datasource>.csv | .ndjson | .parquet, appended by `tody push --fixtures`
    tests/            endpoint tests (`tody test`)

A resource is named after its file (`pipes/top_users.pipe` is the pipe `top_users`). The project root is
the folder given with `--folder`, else the nearest folder (the current one or a parent) with a `.tinyb`,
else the current folder. INCLUDE paths are resolved against the including file's folder, then the root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import click

from tody.cli.project import tinyb
from tody.datafiles import DatafileError, DatasourceFile, parse_datasource
from tody.datafiles.pipe import PipeFile, parse_pipe

DATASOURCE_FOLDERS = ("datasources",)
PIPE_FOLDERS = ("pipes", "endpoints", "materializations", "copies", "sinks")
SCAFFOLD = ("datasources", "pipes", "fixtures", "tests")
FIXTURE_FORMATS = ("csv", "ndjson", "parquet")
SUFFIXES = {".datasource": "datasource", ".pipe": "pipe"}


def find_root(folder: Path | None = None) -> Path:
    """`folder` if given; else the folder of the nearest `.tinyb`; else the current folder."""
    if folder is not None:
        return folder.resolve()
    found = tinyb.find()
    return found.parent if found is not None else Path.cwd().resolve()


def resource_name(path: Path) -> str:
    return path.name.split(".")[0]


def kind_of(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix)


@dataclass
class Resource:
    """One datafile of the project. `parsed` is None when the file does not parse (see `error`)."""

    kind: str  # "datasource" | "pipe"
    name: str
    path: Path
    text: str
    parsed: DatasourceFile | PipeFile | None = None
    error: DatafileError | None = None

    def label(self, root: Path) -> str:
        return display(self.path, root)


@dataclass
class Project:
    root: Path
    resources: list[Resource] = field(default_factory=list)

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.resources}

    @property
    def datasources(self) -> list[Resource]:
        return [r for r in self.resources if r.kind == "datasource"]

    @property
    def pipes(self) -> list[Resource]:
        return [r for r in self.resources if r.kind == "pipe"]

    def fixtures_for(self, name: str) -> list[Path]:
        """Fixture files of data source `name`: fixtures/<name>.<fmt>, else datasources/fixtures/<name>.<fmt>."""
        for folder in (self.root / "fixtures", self.root / "datasources" / "fixtures"):
            found = [
                folder / f"{name}.{fmt}" for fmt in FIXTURE_FORMATS if (folder / f"{name}.{fmt}").is_file()
            ]
            if found:
                return found
        return []


def display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def project_files(root: Path) -> list[Path]:
    """Every .datasource and .pipe of the project, in layout order (data sources first)."""
    found: list[Path] = []
    for folder, suffix in [(f, ".datasource") for f in DATASOURCE_FOLDERS] + [
        (f, ".pipe") for f in PIPE_FOLDERS
    ]:
        base = root / folder
        if base.is_dir():
            found.extend(sorted(p for p in base.rglob(f"*{suffix}") if p.is_file()))
    return found


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """FILES arguments: datafiles as given, folders searched for datafiles. Other files are refused."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and kind_of(p)))
        elif kind_of(path):
            out.append(path)
        else:
            raise click.UsageError(f"{path}: not a .datasource or .pipe file")
    unique: dict[Path, Path] = {}
    for path in out:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def folder_option(
    help: str = "The project folder (default: the nearest folder with a .tinyb, else the current one).",
    *,
    exists: bool = True,
):
    """The `--folder` option of every project command."""
    return click.option(
        "--folder", type=click.Path(file_okay=False, exists=exists, path_type=Path), help=help
    )


FOLDER_OPTION = folder_option()


def with_environment(text: str) -> str:
    """`$NAME` / `${NAME}` replaced by environment variables, as the tb CLI does before it pushes a
    datafile (unknown names are left as written)."""
    return Template(text).safe_substitute(os.environ)


def include_loader(path: Path, root: Path):
    """INCLUDE "x.incl": relative to the including file's folder, then to the project root."""

    def load(name: str) -> str:
        for base in (path.parent, root):
            candidate = (base / name).resolve()
            if candidate.is_file():
                return with_environment(candidate.read_text())
        raise OSError(2, "no such file (looked next to the datafile and in the project folder)")

    return load


def read_resource(path: Path, root: Path) -> Resource:
    kind = kind_of(path)
    if kind is None:
        raise click.UsageError(f"{path}: not a .datasource or .pipe file")
    try:
        text = with_environment(path.read_text())
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path}: {exc.strerror}") from None
    res = Resource(kind, resource_name(path), path.resolve(), text)
    loader = include_loader(path, root)
    try:
        if kind == "datasource":
            res.parsed = parse_datasource(text, filename=display(path, root), include_loader=loader)
        else:
            res.parsed = parse_pipe(text, filename=display(path, root), include_loader=loader)
    except DatafileError as exc:
        res.error = exc
    except ValueError as exc:  # a type or expression the datafile parser refuses
        res.error = DatafileError(str(exc), filename=display(path, root))
    return res


def load_project(root: Path, files: Iterable[Path] | None = None) -> Project:
    """The project's resources (all of them, or those of `files`)."""
    paths = expand_paths(files) if files else project_files(root)
    return Project(root, [read_resource(p, root) for p in paths])


def duplicates(resources: Iterable[Resource], root: Path) -> list[str]:
    """Problems for names used by two files (pipes and data sources share one namespace)."""
    seen: dict[str, Resource] = {}
    problems = []
    for res in resources:
        first = seen.get(res.name)
        if first is not None and first.path != res.path:
            problems.append(
                f"{res.label(root)}: the name '{res.name}' is also used by {first.label(root)} "
                "(pipes and data sources share one namespace)"
            )
        seen.setdefault(res.name, res)
    return problems
