"""The syntax tree of templates: expression nodes, block nodes, and walkers over them.

Nodes are frozen dataclasses holding tuples, so a parsed template can be cached and shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# -- expression nodes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: object
    pos: int


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    pos: int


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class TupleExpr:
    items: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class DictExpr:
    keys: tuple  # constant keys
    values: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple
    kwargs: tuple  # ((name, expr), ...)
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not", "-", "+"
    operand: object
    pos: int


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * / // %
    left: object
    right: object
    pos: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and", "or"
    values: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    left: object
    ops: tuple  # "==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"
    comparators: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class Subscript:
    value: object
    index: object
    pos: int


@dataclass(frozen=True, slots=True)
class IfExp:
    test: object
    body: object
    orelse: object
    pos: int


# -- template nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Output:
    expr: object
    pos: int


@dataclass(frozen=True, slots=True)
class If:
    branches: tuple  # ((condition, body), ...)
    orelse: tuple | None
    pos: int


@dataclass(frozen=True, slots=True)
class For:
    targets: tuple  # names
    iterable: object
    body: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class Set:
    name: str
    expr: object
    pos: int


@dataclass(frozen=True, slots=True)
class Break:
    pos: int


@dataclass(frozen=True, slots=True)
class Continue:
    pos: int


@dataclass(frozen=True)
class Template:
    source: str  # the body, after the leading "%" line
    body: tuple


def children(node: object) -> tuple:
    """Direct sub-expressions of an expression node."""
    kind = type(node)
    if kind in (Const, Name):
        return ()
    if kind in (ListExpr, TupleExpr):
        return node.items  # type: ignore[attr-defined]
    if kind is DictExpr:
        return node.values  # type: ignore[attr-defined]
    if kind is Call:
        return node.args + tuple(v for _, v in node.kwargs)  # type: ignore[attr-defined]
    if kind is Unary:
        return (node.operand,)  # type: ignore[attr-defined]
    if kind is BinOp:
        return (node.left, node.right)  # type: ignore[attr-defined]
    if kind is BoolOp:
        return node.values  # type: ignore[attr-defined]
    if kind is Compare:
        return (node.left, *node.comparators)  # type: ignore[attr-defined]
    if kind is Subscript:
        return (node.value, node.index)  # type: ignore[attr-defined]
    if kind is IfExp:
        return (node.test, node.body, node.orelse)  # type: ignore[attr-defined]
    raise TypeError(f"not an expression node: {kind.__name__}")


def expressions(body: tuple) -> Iterator[object]:
    """Every expression node of a template body, all branches included, in source order."""
    for node in body:
        kind = type(node)
        if kind is Output or kind is Set:
            yield from walk(node.expr)  # type: ignore[attr-defined]
        elif kind is If:
            for cond, branch in node.branches:  # type: ignore[attr-defined]
                yield from walk(cond)
                yield from expressions(branch)
            if node.orelse:  # type: ignore[attr-defined]
                yield from expressions(node.orelse)  # type: ignore[attr-defined]
        elif kind is For:
            yield from walk(node.iterable)  # type: ignore[attr-defined]
            yield from expressions(node.body)  # type: ignore[attr-defined]


def walk(root: object) -> Iterator[object]:
    """An expression and all its sub-expressions, pre-order."""
    pending = [root]
    while pending:
        expr = pending.pop()
        yield expr
        pending.extend(reversed(children(expr)))
