"""The untrusted-SQL gate: every user query passes here before it reaches the engine.

`compile_select` parses with sqlglot (never regular expressions), walks the tree with CTE scoping,
resolves every table through a `Resolver` (unknown names are refused), checks functions and table
functions against allow-lists, rewrites logical names to physical ones (row filters and subquery
bindings wrap the table), and regenerates the SQL from the validated tree. The regenerated text is
checked once more: every name that ClickHouse will call must be allowed (see `dialect.called_names`).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError, UnsupportedError
from sqlglot.tokens import TokenType

from tody.engine.base import Classification
from tody.sql import functions as fn
from tody.sql.dialect import DIALECT, called_names, generate
from tody.sql.walk import Scope, SQLGateError, TableBinding, Walker

_QUERY_START = {TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN}
_TOO_DEEP = "The query is nested too deeply to be checked: simplify it (fewer nested parentheses)"

__all__ = [
    "Classifier",
    "CompiledQuery",
    "Resolver",
    "SQLGateError",
    "TableBinding",
    "compile_select",
    "tables_read",
    "validate_expression",
]


class Resolver(Protocol):
    def resolve(self, database: str | None, name: str) -> TableBinding | None:
        """Logical name as written by the user (database is the qualifier or None). None = unknown."""


class Classifier(Protocol):
    def classify(self, sql: str) -> Classification: ...


@dataclass(frozen=True)
class CompiledQuery:
    sql: str  # regenerated ClickHouse SQL with physical names; never contains FORMAT/SETTINGS
    output_format: str | None  # the FORMAT named at the end of the query, as written
    tables: tuple[tuple[str | None, str], ...]  # logical (qualifier, name) pairs read, in order, unique


# -- parsing -----------------------------------------------------------------------------------------


def _check_size(sql: str, max_bytes: int) -> None:
    if len(sql) > max_bytes or len(sql.encode("utf-8")) > max_bytes:
        raise SQLGateError(f"The query is too long: the limit is {max_bytes} bytes")


def _syntax_error(exc: SqlglotError) -> SQLGateError:
    if isinstance(exc, ParseError) and exc.errors:
        first = exc.errors[0]
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        near = (first.get("highlight") or "").strip()
        near = f" near '{near[:40]}'" if near else ""
        description = first.get("description") or "invalid SQL"
        if "<class" in description:  # "Required keyword: 'this' missing for <class 'sqlglot...'>"
            description = "incomplete expression"
        description = description.split(" but got <Token", 1)[0]  # "Expected table name but got <Token ...>"
        return SQLGateError(f"Syntax error{where}{near}: {description}")
    return SQLGateError(f"Syntax error: {str(exc).splitlines()[0][:200]}")


def _parse_statements(sql: str) -> list[exp.Expr]:
    try:
        tokens = DIALECT.tokenize(sql)
        if tokens and tokens[0].token_type not in _QUERY_START:
            raise SQLGateError(
                f"{tokens[0].text.upper()} statements are not allowed: only SELECT queries can be run"
            )
        statements = DIALECT.parser().parse(tokens, sql)
    except ParseError as exc:
        pairs = itertools.pairwise(tokens)
        if any(a.token_type == TokenType.INTO and b.text.upper() == "OUTFILE" for a, b in pairs):
            raise SQLGateError("INTO OUTFILE is not allowed: results are returned by the server") from None
        raise _syntax_error(exc) from None
    except TokenError as exc:
        raise _syntax_error(exc) from None
    found = [s for s in statements if s is not None]
    if not found:
        raise SQLGateError("The query is empty")
    return found


def _parse_select(sql: str) -> exp.Query:
    statements = _parse_statements(sql)
    if len(statements) != 1:
        raise SQLGateError("Only one statement is allowed per query")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        name = type(tree).__name__.upper()
        raise SQLGateError(f"{name} statements are not allowed: only SELECT queries can be run")
    return tree


def _check_emitted(sql: str, allow_table_functions: bool = True, columns: Collection[str] = ()) -> None:
    """Every name the engine will call in `sql` must be allowed (see module docstring). A bare name
    that is a known column is not a call: ClickHouse resolves columns first."""
    for kind, name in called_names(sql):
        if kind == "bare":
            refusal = None if name in columns else fn.parenless_refusal(name)
        else:
            refusal = fn.function_refusal(name)
        if refusal is None:
            continue
        if kind == "call" and (
            (allow_table_functions and name in fn.ALLOWED_TABLE_FUNCTIONS)
            or fn.is_type_name(name)
            or name.upper() == "GROUPING"
        ):
            continue
        raise SQLGateError(refusal[0].upper() + refusal[1:])


def _generate(tree: exp.Expr) -> str:
    try:
        return generate(tree)
    except UnsupportedError as exc:
        raise SQLGateError(f"Unsupported SQL: {str(exc).splitlines()[0][:200]}") from None


# -- public API --------------------------------------------------------------------------------------


def compile_select(
    sql: str, resolver: Resolver, classifier: Classifier | None = None, *, max_bytes: int = 256_000
) -> CompiledQuery:
    """Validate one untrusted SELECT and rewrite it to physical names. Raises SQLGateError."""
    try:
        return _compile_select(sql, resolver, classifier, max_bytes)
    except RecursionError:
        raise SQLGateError(_TOO_DEEP) from None


def _compile_select(
    sql: str, resolver: Resolver, classifier: Classifier | None, max_bytes: int
) -> CompiledQuery:
    _check_size(sql, max_bytes)
    if classifier is not None:
        info = classifier.classify(sql)
        if info.statement_count > 1:
            raise SQLGateError("Only one statement is allowed per query")
        if not info.read_only:
            if info.kind == "UNKNOWN":
                _parse_select(sql)  # a precise message when sqlglot sees the problem too
                raise SQLGateError("Syntax error: the query could not be parsed")
            raise SQLGateError("Only read-only SELECT queries are allowed")
    tree = _parse_select(sql)
    output_format = None
    fmt = tree.args.get("format")
    if fmt is not None:
        output_format = fmt.name
        tree.set("format", None)
    walker = Walker(resolver, strict=True)
    walker.query(tree, Scope())
    out = _generate(tree)
    _check_emitted(out)
    return CompiledQuery(sql=out, output_format=output_format, tables=tuple(walker.tables))


def validate_expression(sql: str, columns: Collection[str] | None = None, *, max_bytes: int = 16_000) -> str:
    """Validate one scalar/boolean expression (row filters, defaults, sorting keys, TTL, delete
    conditions): no subqueries or tables, allow-listed functions only, and when `columns` is given
    every column must be one of them. Returns the regenerated expression."""
    try:
        return _validate_expression(sql, columns, max_bytes)
    except RecursionError:
        raise SQLGateError(_TOO_DEEP) from None


def _validate_expression(sql: str, columns: Collection[str] | None, max_bytes: int) -> str:
    _check_size(sql, max_bytes)
    try:
        statements = DIALECT.parser().parse_into(exp.Expr, DIALECT.tokenize(sql), sql)
    except (ParseError, TokenError) as exc:
        raise _syntax_error(exc) from None
    found = [s for s in statements if s is not None]
    if len(found) != 1:
        raise SQLGateError("Expected exactly one expression")
    tree = found[0]
    if isinstance(tree, exp.Alias):
        raise SQLGateError("Aliases (AS) are not allowed in this expression")
    allowed = set(columns) if columns is not None else None
    lambda_params: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.Lambda):
            lambda_params.update(p.name for p in node.expressions)
    for node in tree.walk():
        if isinstance(node, (exp.Query, exp.Table)):
            raise SQLGateError("Subqueries and table references are not allowed in this expression")
        if isinstance(node, exp.In) and not node.args.get("query"):
            target = node.args.get("field") or (node.expressions[0] if len(node.expressions) == 1 else None)
            while isinstance(target, exp.Paren):
                target = target.this
            if isinstance(target, exp.Column):
                raise SQLGateError("IN <table> is not allowed in this expression: use a list of values")
        if isinstance(node, exp.Column) and allowed is not None:
            if node.table:
                raise SQLGateError(f"Unknown column '{node.sql(dialect=DIALECT)}': use the bare column name")
            if node.name not in allowed and node.name not in lambda_params:
                raise SQLGateError(f"Unknown column '{node.name}'")
    walker = Walker(None, strict=True)
    walker.visit(tree, Scope())
    out = _generate(tree)
    _check_emitted(out, allow_table_functions=False, columns=allowed or ())
    return out


def tables_read(sql: str, *, table_functions: bool = True) -> list[tuple[str, str, str]]:
    """What a query reads, for POST /v0/sql_tables: `(database or "", table, "")` per table, then
    `("", "", function)` per table function, each in order of appearance and without duplicates.
    CTE names are excluded and `x IN name` counts as a read; nothing is validated (use compile_select
    for that). Raises SQLGateError on a syntax error."""
    try:
        return _tables_read(sql, table_functions)
    except RecursionError:
        raise SQLGateError(_TOO_DEEP) from None


def _tables_read(sql: str, table_functions: bool) -> list[tuple[str, str, str]]:
    statements = _parse_statements_any(sql)
    walker = Walker(None, strict=False)
    for tree in statements:
        if isinstance(tree, exp.Query):
            walker.query(tree, Scope())
        else:
            walker.visit(tree, Scope())
    result = [(db or "", name, "") for db, name in walker.tables]
    if table_functions:
        result.extend(("", "", name) for name in walker.table_functions)
    return result


def _parse_statements_any(sql: str) -> list[exp.Expr]:
    try:
        statements = DIALECT.parse(sql)
    except (ParseError, TokenError) as exc:
        raise _syntax_error(exc) from None
    return [s for s in statements if s is not None]
