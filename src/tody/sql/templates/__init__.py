"""Tinybird-style SQL templates, rendered safely.

A node's SQL is a template when its first non-blank line is `%`. The rest uses Tornado's syntax:
`{{ expr }}` prints, `{% if %}/{% elif %}/{% else %}/{% end %}`, `{% for x in expr %}…{% end %}`,
`{% set x = expr %}`, `{# comment #}`. Request parameters become typed, escaped ClickHouse literals:

    %
    SELECT * FROM events
    WHERE 1 = 1 {% if defined(country) %} AND country IN {{ Array(country, 'String') }} {% end %}
    LIMIT {{ Int32(limit, 100) }}

Nothing is evaluated as Python: a hand-written lexer and parser accept a small expression language
(literals, names, allow-listed function calls, `not/and/or`, comparisons, `+ - * / // %`, subscripts,
`a if c else b`) and a tree-walking evaluator runs it within fixed limits (see `errors`).

Behaviours chosen where Tinybird's documentation is silent:
- A bare `{{ x }}` of a request parameter prints it as a quoted String literal (a list as an array
  of strings), never as raw SQL text; identifiers go through `column()`, `columns()` or `symbol()`.
- A parameter counts as given when its value is not empty: `?x=` is the same as no `x` for
  `defined(x)`, typed functions (the default applies) and the other functions.
- A missing optional parameter without a default gives its type's neutral value: `''`, `0`, `0`
  (Boolean), `'1970-01-01'`, `'1970-01-01 00:00:00'`, `'1970-01-01 00:00:00.000'`, the nil UUID,
  `'{}'` (JSON) or `[]` (Array), so the SQL stays valid. `defined=False` returns an undefined marker
  instead (dropped by `sql_and`).
- A scalar parameter sent several times uses its last value.
- Dates and times print as quoted strings (`'2024-01-01'`), as in Tinybird; DateTime also accepts
  `YYYY-MM-DDTHH:MM:SS` and a bare date (midnight), and is normalised to `YYYY-MM-DD HH:MM:SS`.
- Boolean accepts true/false/1/0 in any case and prints `1`/`0`.
- `{% set %}` assigns a template variable that hides a request parameter of the same name (Tornado
  semantics); `variables` passed by the server (e.g. a JWT's fixed parameters) hide request values.
- Whitespace is kept exactly as written; only the leading `%` line is removed.
- Integers beyond the 64-bit range print as `toInt256('…')`/`toUInt256('…')` (ClickHouse would
  read a bare literal that wide as Float64); `1-{{x}}` with x = -5 prints `1- -5`, never `--`.
- `params()` raises TemplateError when the template has a syntax error (it must parse to walk it).

Limits (each a 400 naming the limit, see `errors`): template 256,000 characters; blocks and
brackets nested 50 deep; expression trees 100 deep; 10,000 loop iterations per render; output
1,000,000 characters; strings 1,000,000 characters and lists/ranges 100,000 items; 1,000,000
evaluation steps; integers of 1024 bits.
"""

from __future__ import annotations

from collections.abc import Mapping

from tody.sql.templates.declarations import declared_params
from tody.sql.templates.errors import TemplateError, TemplateHTTPError
from tody.sql.templates.evaluate import Renderer
from tody.sql.templates.functions import FUNCTIONS
from tody.sql.templates.nodes import Template, Text
from tody.sql.templates.parser import parse_template
from tody.sql.templates.types import ParamSpec

__all__ = [
    "FUNCTIONS",
    "ParamSpec",
    "TemplateError",
    "TemplateHTTPError",
    "is_template",
    "params",
    "parse",
    "render",
]


def _split(sql: str) -> tuple[str, int] | None:
    """The template body after the `%` line and the number of lines before it; None for plain SQL."""
    pos = 0
    lines = 0
    while True:
        end = sql.find("\n", pos)
        line = sql[pos:] if end == -1 else sql[pos:end]
        lines += 1
        if line.strip():
            if line.strip() != "%":
                return None
            return ("" if end == -1 else sql[end + 1 :]), lines
        if end == -1:
            return None
        pos = end + 1


def is_template(sql: str) -> bool:
    """True when the first non-blank line is exactly `%` (surrounding spaces allowed)."""
    return _split(sql) is not None


def parse(sql: str) -> Template | None:
    """Parse a template (cached); None for plain SQL. Raises TemplateError on syntax errors, with
    line numbers counted in `sql` (the `%` line included)."""
    split = _split(sql)
    if split is None:
        return None
    body, skipped = split
    # Parse with the skipped lines kept as newlines so error line numbers match the user's SQL,
    # then drop those newlines from the first text node.
    template = parse_template("\n" * skipped + body)
    first = template.body[0] if template.body else None
    if not isinstance(first, Text):  # pragma: no cover - the padding always starts a text node
        return template
    rest = (Text(first.text[skipped:]),) if len(first.text) > skipped else ()
    return Template(body, rest + template.body[1:])


def render(
    sql: str,
    values: Mapping[str, str | list[str]] | None = None,
    *,
    variables: Mapping[str, object] | None = None,
) -> str:
    """Render a template with request `values` (strings, or lists of strings for repeated
    parameters) and trusted `variables`. Plain SQL is returned unchanged.

    Raises TemplateError (HTTP 400) for bad templates and bad values, TemplateHTTPError for
    `error()`/`custom_error()`."""
    template = parse(sql)
    if template is None:
        return sql
    clean = {str(k): _request_value(v) for k, v in (values or {}).items()}
    return Renderer(template, clean, dict(variables or {})).render()


def params(sql: str) -> list[ParamSpec]:
    """Every parameter the template declares through typed functions, all branches included,
    deduplicated by name in first-appearance order; [] for plain SQL."""
    template = parse(sql)
    return [] if template is None else declared_params(template)


def _request_value(value: object) -> str | list[str]:
    if isinstance(value, list | tuple):
        return [v if isinstance(v, str) else str(v) for v in value]
    return value if isinstance(value, str) else str(value)
