"""Writing test files, and rewriting expectations in place (comments, names and order kept)."""

from __future__ import annotations

import math
from typing import Any

import yaml


def _inline(value: Any) -> str:
    """A YAML scalar on one line."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True)
        .removesuffix("\n...\n")
        .rstrip("\n")
    )


def render_value(value: Any, indent: int) -> str:
    """`value` as the text after `key: ` for a key at column `indent`: NDJSON text as a literal block."""
    if isinstance(value, str) and value.endswith("\n") and "\n" in value:
        pad = " " * (indent + 2)
        block = "|\n" + "".join(pad + line + "\n" if line else "\n" for line in value[:-1].split("\n"))
        try:
            if yaml.safe_load(f"k: {block}") == {"k": value}:
                return block.rstrip("\n")
        except yaml.YAMLError:
            pass
        return yaml.safe_dump(value, default_style='"', width=math.inf, allow_unicode=True).rstrip("\n")
    return _inline(value)


def render_tests(tests: list[dict[str, Any]]) -> str:
    """A Forward test file: the keys in the order given, NDJSON results as literal blocks."""
    out = []
    for test in tests:
        first = True
        for key, value in test.items():
            out.append(f"{'- ' if first else '  '}{key}: {render_value(value, 2)}\n")
            first = False
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"


def update_text(text: str, updates: dict[int, dict[str, Any]], shapes: dict[int, str]) -> tuple[str, bool]:
    """Set keys of the tests at the given list positions, editing `text` in place (comments, order and
    layout stay: True) or, when an edit cannot be made safely (flow-style tests), re-writing the whole
    file from its data (False)."""
    data = yaml.safe_load(text)
    wanted = _apply(data, updates, shapes)
    try:
        edited = _edit_in_place(text, updates, shapes)
        if yaml.safe_load(edited) == wanted:
            return edited, True
    except (yaml.YAMLError, _CannotEdit):
        pass
    return yaml.dump(wanted, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=math.inf), False


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (NDJSON results) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value.rstrip("\n") or (value.endswith("\n") and len(value) > 1) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def mapping_of(item: Any, shape: str) -> dict:
    return item if shape == "forward" else next(iter(item.values()))


def _apply(data: list, updates: dict[int, dict[str, Any]], shapes: dict[int, str]) -> list:
    import copy

    data = copy.deepcopy(data)
    for index, keys in updates.items():
        mapping = mapping_of(data[index], shapes[index])
        mapping.update(keys)
    return data


class _CannotEdit(Exception):
    pass


def _edit_in_place(text: str, updates: dict[int, dict[str, Any]], shapes: dict[int, str]) -> str:
    root = yaml.compose(text)
    if not isinstance(root, yaml.SequenceNode) or root.flow_style:
        raise _CannotEdit
    edits: list[tuple[int, int, str]] = []
    for index, keys in updates.items():
        node = root.value[index]
        if shapes[index] == "classic":
            node = node.value[0][1]
        if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
            raise _CannotEdit
        indent = node.value[0][0].start_mark.column
        present = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        inserts = []
        for key, value in keys.items():
            if key in present:
                edits.append(_replace(text, present[key][1], render_value(value, indent)))
            else:
                inserts.append(f"{' ' * indent}{key}: {render_value(value, indent)}\n")
        if inserts:
            at = _after_value(text, node.value[-1][1])
            prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
            edits.append((at, at, prefix + "".join(inserts)))
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _after_value(text: str, value: yaml.Node) -> int:
    """Where a new key goes after this value: the start of the line after its last content."""
    span = text[value.start_mark.index : value.end_mark.index]
    content_end = value.start_mark.index + len(span.rstrip())
    newline = text.find("\n", content_end)
    return len(text) if newline < 0 else newline + 1


def _replace(text: str, value: yaml.Node, rendered: str) -> tuple[int, int, str]:
    start, end = value.start_mark.index, value.end_mark.index
    span = text[start:end]
    if isinstance(value, yaml.ScalarNode) and value.style in ("|", ">"):
        trailing = span[len(span.rstrip("\n")) :]  # blank lines after the block: keep them
        return start, end, rendered + (trailing or "\n")
    if not isinstance(value, yaml.ScalarNode) and not value.flow_style:
        raise _CannotEdit  # a block collection where a scalar goes
    if rendered.startswith("|"):
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        rest = text[end:line_end]
        if rest.strip():  # `key: '' # comment`: the comment moves onto the block's header line
            header, _, body = rendered.partition("\n")
            return start, line_end, f"{header} {rest.strip()}\n{body}"
        return start, end, rendered
    return start, end, rendered


# ----------------------------------------------------------------------------------------------------
# Commands
