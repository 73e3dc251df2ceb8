""".pipe files: parse ↔ render, and the same object built from the JSON body `tb push` POSTs to /v0/pipes.

Syntax (Tinybird's datafile format, see datafiles.datasource): `NODE name` starts a node and everything
until the next NODE belongs to it. Inside a node: `SQL >` + an indented block, `DESCRIPTION`, `TYPE`
(endpoint | materialized | copy | sink | stream, any case; `standard` / `default` mean no type),
`DATASOURCE`, `TARGET_DATASOURCE`, `COPY_SCHEDULE`, `COPY_MODE`, Classic `ENGINE` / `ENGINE_*` lines, and
the kept-verbatim `EXPORT_*` / `DEPLOYMENT_METHOD`. `TYPE` written after the last node's SQL (at the end
of the file) is simply part of that node. Pipe level: `DESCRIPTION` before the first NODE, and `TOKEN`,
`TAGS`, `CACHE`, `VERSION` anywhere. `INCLUDE` lines are expanded first (see datafiles.include).

Blocks (`KEY >`): the indented lines that follow, blank lines inside kept, common indentation removed,
`#` lines at column 0 dropped (indented `#` lines are text: markdown headings, SQL). A block whose first
line is indented ends at the next non-indented line. A block written at column 0 (seen in Tinybird's
examples) ends at a non-indented line that follows a blank line or starts with a pipe instruction.

Canonical form (what `render_pipe` writes; `render(parse(x)) == x` for such files):

    DESCRIPTION >
        text

    TOKEN reader READ

    TAGS "a,b"

    NODE first
    DESCRIPTION >
        text
    SQL >
        %
        SELECT ...

    NODE last
    SQL >
        SELECT ...

    TYPE endpoint
    CACHE 60

Node lines after the SQL come in this order: TYPE, DATASOURCE, TARGET_DATASOURCE, COPY_SCHEDULE,
COPY_MODE, ENGINE, ENGINE_* (datasource order), extra instructions; CACHE closes the file. Values are
written bare, except TAGS and engine values which are double-quoted. Spelling is kept where it does not
change meaning: a parsed file remembers how each one-line value was written (`TYPE ENDPOINT`,
`TOKEN "name" READ`, `DATASOURCE "x"`, an inline DESCRIPTION) in `spelling`, which takes no part in
equality and is used by `render_pipe` only while it still denotes the current value.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tody.datafiles.datasource import (
    _INSTRUCTION,
    ENGINE_INSTRUCTIONS,
    DatafileError,
    _block,
    _Line,
    _Reader,
    _token_line,
    _unquote,
    _value,
)
from tody.datafiles.include import expand_includes

__all__ = ["PIPE_TYPES", "NodeFile", "PipeFile", "parse_pipe", "pipe_from_api", "render_pipe"]

PIPE_TYPES = ("endpoint", "materialized", "copy", "sink", "stream")
_NO_TYPE = ("standard", "default")
_NODE_VALUES = {
    "DATASOURCE": "datasource",
    "TARGET_DATASOURCE": "target_datasource",
    "COPY_SCHEDULE": "copy_schedule",
    "COPY_MODE": "copy_mode",
}
_ENGINE_KEYS = ("ENGINE", *ENGINE_INSTRUCTIONS)
_NODE_EXTRA = ("DEPLOYMENT_METHOD",)  # plus every EXPORT_* (sink settings)
_PIPE_EXTRA = ("VERSION",)
_INSTRUCTIONS = {"NODE", "SQL", "DESCRIPTION", "TYPE", "TOKEN", "TAGS", "CACHE", "INCLUDE"}
_INSTRUCTIONS.update(_NODE_VALUES, _ENGINE_KEYS, _NODE_EXTRA, _PIPE_EXTRA)
_NODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BARE = re.compile(r"[^\s\"'](?:[^\n]*[^\s\"'])?\Z")


@dataclass
class NodeFile:
    name: str
    sql: str  # as written, dedented; a template starts with a "%" line
    description: str | None = None
    type: str | None = None  # one of PIPE_TYPES, or None for a standard node
    datasource: str | None = None  # materialized target (DATASOURCE)
    target_datasource: str | None = None  # copy target (TARGET_DATASOURCE)
    copy_schedule: str | None = None  # cron expression or @on-demand
    copy_mode: str | None = None  # append | replace
    engine: dict[str, str] = field(default_factory=dict)  # {"ENGINE": ..., "ENGINE_SORTING_KEY": ...}
    extra: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, raw value; ">\n…" = block)
    spelling: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class PipeFile:
    nodes: list[NodeFile]
    description: str | None = None
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (name, "READ")
    tags: str | None = None
    cache: int | None = None  # CACHE seconds (endpoint result cache)
    extra: list[tuple[str, str]] = field(default_factory=list)
    spelling: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def output_node(self) -> NodeFile | None:
        """The node with a TYPE (a pipe has at most one), else None."""
        return next((node for node in self.nodes if node.type is not None), None)


# ---------------------------------------------------------------------------------------------------
# Value readers (shared by parsing and by `spelling` checks when rendering); they raise ValueError


def _type_value(raw: str) -> str | None:
    value = _unquote(raw).strip().lower()
    if value in _NO_TYPE:
        return None
    if value not in PIPE_TYPES:
        raise ValueError(f"unknown TYPE {_unquote(raw).strip()!r}: use one of {', '.join(PIPE_TYPES)}")
    return value


def _copy_mode_value(raw: str) -> str:
    value = _unquote(raw).strip().lower()
    if value not in ("append", "replace"):
        raise ValueError(f"COPY_MODE must be append or replace, not {_unquote(raw).strip()!r}")
    return value


def _cache_value(raw: str) -> int:
    text = _unquote(raw).strip()
    if not text.isdigit():
        raise ValueError(f"CACHE takes a number of seconds, not {text!r}")
    return int(text)


def _token_value(raw: str) -> tuple[str, str]:
    try:
        parts = shlex.split(raw)
    except ValueError:
        parts = []
    if not parts or len(parts) > 2 or not parts[0]:
        raise ValueError('expected TOKEN <name> READ, e.g. TOKEN "dashboard" READ')
    scope = parts[1].upper() if len(parts) == 2 else "READ"
    if scope != "READ":
        raise ValueError(f"pipe tokens can only be READ, not {parts[1]!r}")
    return parts[0], scope


def _text_value(raw: str) -> str:
    return _unquote(raw).strip()


_READERS: dict[str, Callable[[str], object]] = {
    "TYPE": _type_value,
    "COPY_MODE": _copy_mode_value,
    "CACHE": _cache_value,
}


# ---------------------------------------------------------------------------------------------------
# Parsing


def _is_instruction(text: str) -> bool:
    m = _INSTRUCTION.match(text)
    return bool(m) and (m.group(1) in _INSTRUCTIONS or m.group(1).startswith("EXPORT_"))


class _PipeReader(_Reader):
    example = "NODE or SQL >"
    block_hint = " (such as SQL >)"

    def _block_end(self, i: int) -> int:
        lines, indented, previous_blank = self.lines, None, False
        while i < len(lines):
            text = lines[i].text
            if not text.strip():
                previous_blank = True
            elif text[0] in " \t":
                indented = True if indented is None else indented
                previous_blank = False
            elif not text.startswith("#"):
                if indented or previous_blank or _is_instruction(text):
                    return i
                indented, previous_blank = False, False
            i += 1
        return i


def _block_value(block: list[_Line]) -> str:
    """Drop column-0 comments and trailing spaces, trim blank lines at both ends, remove the common
    indentation."""
    body = [ln.text.rstrip() for ln in block if not ln.text.startswith("#")]
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    indents = [t[: len(t) - len(t.lstrip(" \t"))] for t in body if t.strip()]
    prefix = min(indents, key=len) if indents else ""
    while prefix and not all(ind.startswith(prefix) for ind in indents):
        prefix = prefix[:-1]
    return "\n".join(t[len(prefix) :] if t.strip() else "" for t in body)


def parse_pipe(
    text: str, *, filename: str | None = None, include_loader: Callable[[str], str] | None = None
) -> PipeFile:
    """Parse .pipe text. `include_loader(path) -> text` resolves INCLUDE lines (an INCLUDE without a
    loader is an error). Raises DatafileError with the line number."""
    reader = _PipeReader(expand_includes(text, include_loader, filename=filename), filename)
    pipe = PipeFile(nodes=[])
    node: NodeFile | None = None
    node_lines: dict[str, _Line] = {}
    seen: dict[tuple[int, str], _Line] = {}  # (id of pipe or node, KEY) → first line
    type_lines: dict[str, _Line] = {}
    sql_seen: set[str] = set()
    output: tuple[NodeFile, _Line] | None = None

    for key, inline, block, line in reader.statements():
        value = _block_value(block) if block is not None else (inline or "").strip()

        def read(reader_fn: Callable[[str], object], value: str = value, line: _Line = line):
            try:
                return reader_fn(value)
            except ValueError as exc:
                raise reader.error(str(exc), line) from None

        if key == "NODE":
            name = _unquote(value)
            if not _NODE_NAME.match(name):
                raise reader.error(
                    f"invalid node name {name!r}: use letters, digits and underscores, "
                    "not starting with a digit",
                    line,
                )
            if name in node_lines:
                raise reader.error(
                    f"node {name!r} is defined twice (first on line {node_lines[name].number})", line
                )
            node = NodeFile(name=name, sql="")
            node_lines[name] = line
            pipe.nodes.append(node)
            continue
        if key == "INCLUDE":  # only reachable without expansion, which expand_includes refuses
            raise reader.error("INCLUDE cannot be resolved here", line)

        pipe_level = key in ("TOKEN", "TAGS", "CACHE") or key in _PIPE_EXTRA or node is None
        owner: PipeFile | NodeFile = pipe if pipe_level else node  # type: ignore[assignment]
        if key not in ("TOKEN",) and key not in _PIPE_EXTRA and not key.startswith("EXPORT_"):
            first = seen.get((id(owner), key))
            if first is not None:
                where = "the pipe" if owner is pipe else f"node {owner.name!r}"
                raise reader.error(f"{key} appears twice in {where} (first on line {first.number})", line)
            seen[(id(owner), key)] = line
        if block is None and key not in ("SQL", "TOKEN") and key in _INSTRUCTIONS:
            owner.spelling[key] = value

        if key == "DESCRIPTION":
            owner.description = value if block is not None else _unquote(value)
        elif key == "TOKEN":
            name_scope = read(_token_value)
            pipe.tokens.append(name_scope)
            pipe.spelling[f"TOKEN {name_scope[0]}"] = value
        elif key == "TAGS":
            pipe.tags = _text_value(value)
        elif key == "CACHE":
            pipe.cache = read(_cache_value)
        elif key in _PIPE_EXTRA:
            pipe.extra.append((key, value if block is None else ">\n" + value))
        elif node is None:
            known = key in _INSTRUCTIONS or key.startswith("EXPORT_")
            reason = (
                "belongs to a node: write it after 'NODE <name>'" if known else "is not a pipe instruction"
            )
            raise reader.error(f"{key} {reason}", line)
        elif key == "SQL":
            if not value.strip():
                raise reader.error(f"the SQL of node {node.name!r} is empty", line)
            node.sql = value
            sql_seen.add(node.name)
        elif key == "TYPE":
            node.type = read(_type_value)
            type_lines[node.name] = line
            if node.type is not None:
                if output is not None:
                    raise reader.error(
                        f"a pipe has one output: node {node.name!r} has TYPE {node.type}, but node "
                        f"{output[0].name!r} already has TYPE {output[0].type} (line {output[1].number})",
                        line,
                    )
                output = (node, line)
        elif key == "COPY_MODE":
            node.copy_mode = read(_copy_mode_value)
        elif key in _NODE_VALUES or key in _ENGINE_KEYS:
            written = _text_value(value)
            if not written:
                raise reader.error(f"{key} needs a value", line)
            if key in _NODE_VALUES:
                setattr(node, _NODE_VALUES[key], written)
            else:
                node.engine[key] = written
        elif key.startswith("ENGINE_"):
            raise reader.error(
                f"unknown engine instruction {key}; known ones: {', '.join(_ENGINE_KEYS)}", line
            )
        elif key in _NODE_EXTRA or key.startswith("EXPORT_"):
            node.extra.append((key, value if block is None else ">\n" + value))
        else:
            raise reader.error(f"unknown instruction {key}", line)

    if not pipe.nodes:
        raise DatafileError(
            "a pipe needs at least one node: add 'NODE <name>' and 'SQL >'", filename=filename
        )
    for n in pipe.nodes:
        if n.name not in sql_seen:
            raise reader.error(
                f"node {n.name!r} has no SQL: add 'SQL >' and the indented query", node_lines[n.name]
            )
        needed = {"materialized": "DATASOURCE", "copy": "TARGET_DATASOURCE"}.get(n.type or "")
        if needed and getattr(n, _NODE_VALUES[needed]) is None:
            raise reader.error(
                f"TYPE {n.type} needs {needed} <data source name> in node {n.name!r}", type_lines[n.name]
            )
    return pipe


# ---------------------------------------------------------------------------------------------------
# Rendering


def _spelled(spelling: dict[str, str], key: str, value: object, canonical: str) -> str:
    """`KEY <as written>` while the written form still reads as `value`, else the canonical line."""
    raw = spelling.get(key)
    if raw is not None:
        try:
            if _READERS.get(key, _text_value)(raw) == value:
                return f"{key} {raw}" if raw else key
        except ValueError:
            pass
    return canonical


def _bare(key: str, value: str) -> str:
    return f"{key} {value}" if _BARE.match(value) else _value(key, value)


def _description(owner: PipeFile | NodeFile) -> str:
    text = owner.description or ""
    raw = owner.spelling.get("DESCRIPTION")
    if raw is not None and "\n" not in text and _unquote(raw) == text:
        return f"DESCRIPTION {raw}" if raw else "DESCRIPTION"
    return _block("DESCRIPTION", text)


def _extra_lines(extra: list[tuple[str, str]]) -> list[str]:
    return [
        _block(key, raw[2:]) if raw.startswith(">\n") or raw == ">" else (f"{key} {raw}" if raw else key)
        for key, raw in extra
    ]


def _node_tail(node: NodeFile) -> list[str]:
    sp, lines = node.spelling, []
    type_line = _spelled(sp, "TYPE", node.type, f"TYPE {node.type}" if node.type else "")
    if type_line:  # also `TYPE standard` as written, which means no type
        lines.append(type_line)
    for key, attr in _NODE_VALUES.items():
        value = getattr(node, attr)
        if value is not None:
            lines.append(_spelled(sp, key, value, _bare(key, value)))
    order = [k for k in _ENGINE_KEYS if k in node.engine] + [k for k in node.engine if k not in _ENGINE_KEYS]
    lines.extend(_spelled(sp, k, node.engine[k], _value(k, node.engine[k])) for k in order)
    lines.extend(_extra_lines(node.extra))
    return lines


def render_pipe(pipe: PipeFile) -> str:
    """Canonical .pipe text (see the module docstring); includes are written expanded."""
    sections: list[str] = []
    if pipe.description is not None:
        sections.append(_description(pipe))
    if pipe.tokens:
        lines = []
        for name, scope in pipe.tokens:
            raw = pipe.spelling.get(f"TOKEN {name}")
            try:
                written = raw is not None and _token_value(raw) == (name, scope)
            except ValueError:
                written = False
            lines.append(f"TOKEN {raw}" if written else _token_line(name, scope))
        sections.append("\n".join(lines))
    if pipe.tags is not None:
        sections.append(_spelled(pipe.spelling, "TAGS", pipe.tags, _value("TAGS", pipe.tags)))
    if pipe.extra:
        sections.append("\n".join(_extra_lines(pipe.extra)))
    for index, node in enumerate(pipe.nodes):
        head = [f"NODE {node.name}"]
        if node.description is not None:
            head.append(_description(node))
        head.append(_block("SQL", node.sql))
        tail = _node_tail(node)
        if index == len(pipe.nodes) - 1 and pipe.cache is not None:
            tail.append(_spelled(pipe.spelling, "CACHE", pipe.cache, f"CACHE {pipe.cache}"))
        sections.append("\n".join(head) + ("\n\n" + "\n".join(tail) if tail else ""))
    if not pipe.nodes and pipe.cache is not None:
        sections.append(f"CACHE {pipe.cache}")
    return "\n\n".join(sections) + "\n"


# ---------------------------------------------------------------------------------------------------
# API body (POST /v0/pipes, JSON)


def _api_text(data: Mapping, key: str, where: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise DatafileError(f"{where}.{key} is required")
        return None
    if not isinstance(value, str):
        raise DatafileError(f"{where}.{key} must be a string, not {type(value).__name__}")
    return value


def _api_node(data: object, index: int, body: Mapping) -> NodeFile:
    where = f"nodes[{index}]"
    if not isinstance(data, Mapping):
        raise DatafileError(f"{where} must be an object with 'name' and 'sql'")
    name = _api_text(data, "name", where, required=True)
    if not _NODE_NAME.match(name or ""):
        raise DatafileError(
            f"{where}.name {name!r} is not a valid node name: use letters, digits and underscores, "
            "not starting with a digit"
        )
    sql = _api_text(data, "sql", where, required=True) or ""
    if not sql.strip():
        raise DatafileError(f"{where}.sql (node {name!r}) is empty")
    kind = _api_text(data, "type", where)
    try:
        node_type = _type_value(kind) if kind else None
    except ValueError as exc:
        raise DatafileError(f"{where}.type: {exc}") from None
    description = _api_text(data, "description", where)
    node = NodeFile(name=name or "", sql=sql, description=description, type=node_type)
    node.datasource = _api_text(data, "datasource", where)
    node.target_datasource = _api_text(data, "target_datasource", where)
    node.copy_schedule = _api_text(data, "copy_schedule", where)
    if node_type == "copy":
        node.target_datasource = node.target_datasource or _api_text(body, "target_datasource", "body")
        node.copy_schedule = node.copy_schedule or _api_text(body, "schedule_cron", "body")
        mode = _api_text(data, "mode", where)
        try:
            node.copy_mode = _copy_mode_value(mode) if mode else None
        except ValueError as exc:
            raise DatafileError(f"{where}.mode: {exc}") from None
    for key, value in data.items():
        upper = str(key).upper()
        if value is None or upper not in _ENGINE_KEYS:
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise DatafileError(f"{where}.{key} must be a string")
        if str(value).strip():
            node.engine[upper] = str(value).strip()
    if node_type == "materialized" and not node.datasource:
        raise DatafileError(f"{where} (node {name!r}) is materialized and needs 'datasource'")
    if node_type == "copy" and not node.target_datasource:
        raise DatafileError(f"{where} (node {name!r}) is a copy node and needs 'target_datasource'")
    return node


def pipe_from_api(body: Mapping) -> PipeFile:
    """Build a PipeFile from the JSON body of POST /v0/pipes: `{"name", "description", "nodes": [{"name",
    "sql", "description", "type", "datasource", "target_datasource", "copy_schedule", "mode", "engine",
    "engine_*"}]}` (plus top-level `target_datasource` / `schedule_cron` for copy pipes). Node type
    "standard", "default" or missing means no type; `mode` counts only for copy nodes (the CLI sends
    "append" on every node); empty strings count as absent; other keys (ids, `export_params`, ...) are
    ignored. The pipe's name is the caller's business (PipeFile has none). Raises DatafileError."""
    if not isinstance(body, Mapping):
        raise DatafileError("the request body must be a JSON object with 'name' and 'nodes'")
    _api_text(body, "name", "body")  # only checked: the pipe's name is the caller's business
    description = _api_text(body, "description", "body")
    nodes = body.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise DatafileError("body.nodes must be a non-empty list of nodes")
    pipe = PipeFile(nodes=[], description=description or None)
    positions: dict[str, int] = {}
    output: NodeFile | None = None
    for index, data in enumerate(nodes):
        node = _api_node(data, index, body)
        if node.name in positions:
            raise DatafileError(
                f"nodes[{index}]: node {node.name!r} appears twice (also nodes[{positions[node.name]}])"
            )
        positions[node.name] = index
        if node.type is not None:
            if output is not None:
                raise DatafileError(
                    f"a pipe has one output: node {node.name!r} has type {node.type}, but node "
                    f"{output.name!r} already has type {output.type}"
                )
            output = node
        pipe.nodes.append(node)
    return pipe
