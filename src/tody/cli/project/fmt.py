"""`tody fmt`: rewrite datafiles in canonical form (parsed, then rendered by `tody.datafiles`).

Files are left as they are when formatting would lose something: files with INCLUDE lines (rendering
would paste the included text in) and files with `#` comments (the parser drops them).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from tody.cli.project import compare as cmp
from tody.cli.project.layout import display, expand_paths, find_root, folder_option, kind_of, project_files
from tody.datafiles import DatafileError

_INCLUDE = re.compile(r"^INCLUDE\b", re.M)


def _comments(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.lstrip().startswith("#"))


def formatted(path: Path) -> tuple[str | None, str]:
    """(canonical text, "") or (None, why the file is left as it is)."""
    text = path.read_text()
    if _INCLUDE.search(text):
        return None, "has INCLUDE lines, left as is"
    kind = kind_of(path)
    assert kind is not None
    out = cmp.render(cmp.parse(kind, text, filename=path.name))
    if _comments(out) < _comments(text):
        return None, "has # comments, which formatting would drop: left as is"
    return out, ""


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--diff", "show_diff", is_flag=True, help="Print what would change; write nothing.")
@click.option(
    "--check", "check_only", is_flag=True, help="Exit 1 when a file is not in canonical form; write nothing."
)
@folder_option("Without FILES, the project folder to format (default: the nearest with a .tinyb).")
def fmt(files: tuple[Path, ...], show_diff: bool, check_only: bool, folder: Path | None) -> None:
    """Rewrite datafiles (FILES, or the whole project) in canonical form."""
    root = find_root(folder)
    paths = expand_paths(files) if files else project_files(root)
    changed = errors = 0
    for path in paths:
        label = display(path, root) if not files else str(path)
        try:
            out, why = formatted(path)
        except (DatafileError, ValueError) as exc:
            errors += 1
            click.echo(f"{label}: cannot format: {exc}", err=True)
            continue
        if out is None:
            click.echo(f"{label}: {why}", err=True)
            continue
        text = path.read_text()
        if out == text:
            continue
        changed += 1
        if show_diff:
            click.echo(cmp.colour_diff(cmp.unified(text, out, label, f"{label} (formatted)")))
        if check_only:
            click.echo(f"would reformat {label}")
        elif not show_diff:
            path.write_text(out)
            click.echo(f"reformatted {label}")
    verb = "would be reformatted" if (check_only or show_diff) else "reformatted"
    click.echo(f"{changed} file(s) {verb}, {len(paths) - changed - errors} unchanged", err=True)
    if errors or (check_only and changed):
        raise SystemExit(1)
