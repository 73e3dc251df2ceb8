"""INCLUDE in datafiles: splice an .incl file's lines in place of the INCLUDE line.

    INCLUDE "includes/top_products.incl" "DATE_FILTER=last_week" LIMIT=10 TITLE="top ten"

- The first argument is the path, handed as written to the caller's loader (which resolves it, e.g.
  relative to the project folder, and raises OSError / KeyError / ValueError when it cannot).
- The other arguments are `NAME=value` variables; each one may be quoted whole ("NAME=value") or in its
  value (NAME="x y"), with shell-like quoting. Names are identifiers.
- The included text goes through `$` substitution before its lines are read, with the semantics of
  Python's `string.Template.safe_substitute` (the tb CLI applies the same rules to environment variables):
  `$NAME` and `${NAME}` become the variable's value, `$$` becomes `$`, and a `$` that names no variable of
  this INCLUDE is left as written (so `$.jsonpath`, `$1` and unknown names pass through).
- Variables apply to the included file only: they do not leak into the including file, and a nested
  INCLUDE gets its own (it can forward one: `INCLUDE "inner.incl" "A=$A"`).
- Includes nest up to `MAX_INCLUDE_DEPTH` levels (which also stops a file including itself).

Included lines keep the line number of the top-level INCLUDE line and remember where they came from
("top_products.incl line 3") for error messages.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from string import Template

from tody.datafiles.datasource import DatafileError, _Line

__all__ = ["MAX_INCLUDE_DEPTH", "expand_includes", "parse_include_args", "substitute_variables"]

MAX_INCLUDE_DEPTH = 8
_INCLUDE_LINE = re.compile(r"INCLUDE(?:\s+(.*?))?\s*\Z")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_include_args(args: str) -> tuple[str, dict[str, str]]:
    """`"path.incl" VAR=value ...` → (path, variables). Raises ValueError with a user-facing message."""
    try:
        parts = shlex.split(args)
    except ValueError as exc:
        raise ValueError(f"cannot read the INCLUDE arguments ({exc})") from None
    if not parts or not parts[0]:
        raise ValueError('INCLUDE needs a file name: INCLUDE "file.incl" [NAME=value ...]')
    variables: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if not sep or not _VARIABLE.match(name):
            raise ValueError(f"INCLUDE variables are written NAME=value, got {part!r}")
        variables[name] = value
    return parts[0], variables


def substitute_variables(text: str, variables: dict[str, str]) -> str:
    """`$NAME` / `${NAME}` → value; `$$` → `$`; anything else with a `$` is left alone."""
    return Template(text).safe_substitute(variables)


def expand_includes(
    text: str,
    loader: Callable[[str], str] | None,
    *,
    filename: str | None = None,
    _depth: int = 0,
    _origin: str | None = None,
    _at: int | None = None,
) -> list[_Line]:
    """Split `text` into lines, replacing each `INCLUDE` line (at column 0) by the included file's lines.
    Raises DatafileError (with the top-level line number) for a bad INCLUDE line, a file the loader cannot
    read, too deep nesting, or an INCLUDE when no loader is given."""
    lines: list[_Line] = []
    for n, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        number = _at if _at is not None else n
        where = f"{_origin} line {n}" if _origin else None
        m = _INCLUDE_LINE.match(raw)
        if not m:
            lines.append(_Line(raw, number, where))
            continue

        def error(message: str, where: str | None = where, number: int = number) -> DatafileError:
            return DatafileError(f"{message} (in {where})" if where else message, number, filename=filename)

        try:
            path, variables = parse_include_args(m.group(1) or "")
        except ValueError as exc:
            raise error(str(exc)) from None
        if loader is None:
            raise error(f"INCLUDE {path!r} cannot be resolved: no include loader was given")
        if _depth >= MAX_INCLUDE_DEPTH:
            raise error(f"INCLUDE {path!r} is nested too deeply (or includes itself)")
        try:
            included = loader(path)
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, KeyError):
                reason = "not found"
            else:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise error(f"cannot read included file {path!r}: {reason}") from None
        lines.extend(
            expand_includes(
                substitute_variables(included, variables),
                loader,
                filename=filename,
                _depth=_depth + 1,
                _origin=path,
                _at=number,
            )
        )
    return lines
