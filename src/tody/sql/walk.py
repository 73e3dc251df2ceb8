"""The tree walk behind the gate: CTE scoping, table binding, function checks and rewriting.

`Walker.query` visits one statement. In strict mode (compile_select, validate_expression) it refuses
what is not allowed and rewrites the tree in place: logical table names become physical ones, row
filters and pipe-node subqueries wrap the table, `x IN name` becomes `x IN (SELECT * FROM ...)`, and
CTEs are renamed. In lenient mode (tables_read) it only records what the statement reads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from tody.sql import functions as fn
from tody.sql.dialect import DIALECT


class SQLGateError(ValueError):
    """A query was refused. The message is meant for the user: what was refused and why."""


@dataclass(frozen=True)
class TableBinding:
    database: str | None = None  # physical database; None when `subquery` is set
    table: str | None = None  # physical table
    subquery: str | None = None  # compiled SQL inlined as `(subquery) AS <name>`
    row_filter: str | None = None  # validated boolean SQL; the table becomes a filtered subquery


_SYSTEM_DATABASES = ("system", "information_schema")
# Query clauses sqlglot knows from other dialects; none has a meaning in a ClickHouse SELECT.
_FOREIGN_QUERY_ARGS = (
    "into", "locks", "for_", "options", "hint", "connect", "match", "laterals", "pivots",
    "distribute", "sort", "cluster", "operation_modifiers", "exclude",
)  # fmt: skip
_FOREIGN_TABLE_ARGS = (
    "version", "when", "changes", "rows_from", "only", "partition", "indexed", "format", "pattern",
    "hints", "system_time", "laterals", "pivots", "ordinality",
)  # fmt: skip
_AGG_TYPES = {exp.DType.AGGREGATEFUNCTION, exp.DType.SIMPLEAGGREGATEFUNCTION}
# Statements never belong inside a query (ClickHouse runs `SELECT * FROM (EXPLAIN QUERY TREE ...)`,
# which evaluates scalar subqueries).
_STATEMENTS = (exp.Command, exp.Describe, exp.Show, exp.DDL, exp.DML, exp.Drop, exp.Alter, exp.Set, exp.Use,
               exp.TruncateTable, exp.Detach, exp.Kill, exp.Grant, exp.Revoke, exp.Pragma, exp.Analyze,
               exp.Transaction, exp.Commit, exp.Rollback, exp.LoadData, exp.Cache, exp.Uncache,
               exp.Refresh, exp.Summarize, exp.Execute)  # fmt: skip
_NAMED_CALLS = (exp.Anonymous, exp.AnonymousAggFunc, exp.CombinedAggFunc, exp.ParameterizedAgg,
                exp.CombinedParameterizedAgg)  # fmt: skip


@dataclass(frozen=True)
class Scope:
    ctes: frozenset[str] = frozenset()
    scalars: frozenset[str] = frozenset()  # scalar WITH aliases (`WITH 1 AS x`)
    aliases: frozenset[str] = frozenset()  # SELECT-list aliases of the innermost SELECT


def _cte_name(name: str) -> str:
    """CTEs are renamed so that a reference ClickHouse would not resolve to the CTE (its scoping has
    quirks, see Walker.query) names no existing table instead of a table of the current database."""
    return f"_tody_cte_{name}"


def _quoted(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=_quoted(name))


class Walker:
    """Walks one statement. strict=True validates and rewrites (compile_select); strict=False only
    records what is read (tables_read)."""

    def __init__(self, resolver: Any, strict: bool = True):  # a gate.Resolver, or None
        self.resolver = resolver
        self.strict = strict
        self.tables: dict[tuple[str | None, str], None] = {}
        self.table_functions: dict[str, None] = {}

    def refuse(self, message: str) -> None:
        if self.strict:
            raise SQLGateError(message[0].upper() + message[1:])

    # queries

    def query(self, node: exp.Expr, scope: Scope, union_ctes: frozenset[str] = frozenset()) -> None:
        """`union_ctes`: CTE names of the WITH that opens an enclosing UNION. ClickHouse shows them to
        the union's members, except to a member that has a WITH of its own (measured on 26.9:
        `WITH x AS (..) SELECT * FROM x UNION ALL WITH y AS (..) SELECT * FROM x` reads the table x
        in the second member), so such a member resolves those names as tables."""
        own = node.args.get("with_")
        if own is not None:
            scope = replace(scope, ctes=scope.ctes - union_ctes)
            union_ctes = frozenset(c.alias for c in own.expressions if not c.args.get("scalar"))
        scope = replace(self.with_(own, scope), aliases=frozenset())
        self.check_clauses(node)
        if isinstance(node, exp.Select):
            self.select(node, scope)
            return
        if isinstance(node, exp.SetOperation):
            self.query(node.this, scope, union_ctes)
            self.query(node.expression, scope, union_ctes)
        elif isinstance(node, exp.Subquery):
            inner = node.this
            if isinstance(inner, exp.Table):
                self.source(inner, scope, None, from_table=False)
            elif isinstance(inner, exp.Query):
                self.query(inner, scope, union_ctes)
            else:
                self.refuse("Only SELECT queries are allowed in parentheses")
                self.visit(inner, scope)
        skip = ("with_", "this", "expression")
        for key, value in node.args.items():
            if key not in skip:
                self.visit_arg(value, scope)

    def check_clauses(self, node: exp.Expr) -> None:
        if not self.strict:
            return
        if node.args.get("settings"):
            raise SQLGateError("SETTINGS clauses are not allowed: query settings are set by the server")
        if node.args.get("format"):
            raise SQLGateError("FORMAT is only allowed once, at the very end of the query")
        for key in _FOREIGN_QUERY_ARGS:
            if node.args.get(key):
                raise SQLGateError(f"Unsupported clause in query: {key.rstrip('_').upper()}")

    def with_(self, with_: exp.Expr | None, scope: Scope) -> Scope:
        if with_ is None:
            return scope
        recursive = bool(with_.args.get("recursive"))
        for cte in with_.expressions:
            name = cte.alias
            if cte.args.get("scalar"):
                self.visit(cte.this, scope)
                scope = replace(scope, scalars=scope.scalars | {name})
                continue
            inner = replace(scope, ctes=scope.ctes | {name}) if recursive else scope
            if isinstance(cte.this, exp.Query):
                self.query(cte.this, inner)
            else:
                self.visit(cte.this, inner)
            if self.strict:
                cte.args["alias"].set("this", _quoted(_cte_name(name)))
            scope = replace(scope, ctes=scope.ctes | {name})
        return scope

    def select(self, node: exp.Select, scope: Scope) -> None:
        aliases = {e.alias for e in node.expressions if isinstance(e, exp.Alias)}
        for join in node.args.get("joins") or []:
            if join.args.get("kind") == "ARRAY":
                aliases.update(e.alias for e in join.find_all(exp.Alias))
        scope = replace(scope, aliases=frozenset(aliases))
        from_ = node.args.get("from_")
        if from_ is not None:
            self.source(from_.this, scope, node, from_table=True)
        for join in node.args.get("joins") or []:
            self.join(join, scope, node)
        for key, value in node.args.items():
            if key not in ("with_", "from_", "joins"):
                self.visit_arg(value, scope)

    def join(self, join: exp.Join, scope: Scope, select: exp.Select | None) -> None:
        if join.args.get("kind") == "ARRAY":
            self.visit(join.this, scope)
        else:
            self.source(join.this, scope, select, from_table=False)
        for key, value in join.args.items():
            if key != "this":
                self.visit_arg(value, scope)

    def source(self, node: exp.Expr, scope: Scope, select: exp.Select | None, from_table: bool) -> None:
        final = node if isinstance(node, exp.Final) else None
        inner = node.this if final is not None else node
        if isinstance(inner, exp.Table):
            joins = list(inner.args.get("joins") or [])
            self.table(inner, scope, select, final, from_table)
            for join in joins:
                self.join(join, scope, None)
        elif isinstance(inner, exp.Subquery):
            self.query(inner, scope)
        elif isinstance(inner, exp.Values):
            self.visit(inner, scope)
        else:
            self.refuse(
                "Unsupported table expression: only tables, subqueries and table functions can be read"
            )
            self.visit(inner, scope)

    # tables

    def table(
        self,
        table: exp.Table,
        scope: Scope,
        select: exp.Select | None,
        final: exp.Final | None,
        from_table: bool,
    ) -> None:
        this = table.this
        if self.strict:
            for key in _FOREIGN_TABLE_ARGS:
                if table.args.get(key):
                    raise SQLGateError(f"Unsupported table modifier: {key.upper()}")
        sample = table.args.get("sample")
        if sample is not None and from_table and select is not None and not select.args.get("sample"):
            table.set("sample", None)
            select.set("sample", sample)
        if isinstance(this, exp.Func):
            self.table_function(this, scope)
            return
        if not isinstance(this, exp.Identifier):
            self.refuse("Unsupported table reference")
            return
        if table.args.get("catalog") is not None:
            self.refuse(f"Invalid table name '{table.sql(dialect=DIALECT)}': use [database.]table")
            return
        db = table.args.get("db")
        qualifier = db.name if db is not None else None
        name = this.name
        table_alias = table.args.get("alias")
        if table_alias is not None and table_alias.args.get("columns"):
            if not table_alias.name:  # `dictionary('x')`: a keyword table function read as a table
                self.table_functions[name] = None
                self.refuse(fn.table_function_refusal(name) or "Unsupported table function")
                return
            self.refuse("Column aliases after a table alias are not supported")
        if qualifier is None and name in scope.ctes:
            if self.strict:
                table.set("this", _quoted(_cte_name(name)))
                table.set("alias", table.args.get("alias") or _alias(name))
            return
        binding = self.bind(qualifier, name)
        if binding is None:
            return
        alias = table.alias or name
        if final is not None and binding.subquery is not None:
            raise SQLGateError(f"FINAL cannot be used with '{name}': it is not a Data Source")
        if binding.row_filter is None and binding.subquery is None:
            table.set("this", _quoted(binding.table or ""))
            table.set("db", _quoted(binding.database or ""))
            table.set("alias", _alias(alias))
            return
        sampled = from_table and select is not None and select.args.get("sample") is not None
        inner = _source(binding, final=final is not None, sample=sampled or sample is not None)
        if table.args.get("sample") is not None and isinstance(inner, exp.Select):
            inner.set("sample", table.args["sample"])
        if from_table and select is not None:
            if select.args.get("sample") is not None and isinstance(inner, exp.Select):
                inner.set("sample", select.args["sample"])
                select.set("sample", None)
            prewhere = select.args.get("prewhere")
            if prewhere is not None:  # PREWHERE needs a table; on a filtered table it becomes WHERE
                where = select.args.get("where")
                cond = exp.and_(prewhere.this, where.this) if where is not None else prewhere.this
                select.set("where", exp.Where(this=cond))
                select.set("prewhere", None)
        wrapped = exp.Subquery(this=inner, alias=_alias(alias))
        if table.args.get("joins"):  # `(t JOIN u ...)`: the joins hang off the first table
            wrapped.set("joins", table.args["joins"])
        (final or table).replace(wrapped)

    def bind(self, qualifier: str | None, name: str) -> TableBinding | None:
        display = f"{qualifier}.{name}" if qualifier else name
        if not self.strict:
            self.tables[(qualifier, name)] = None
            return None
        if qualifier is not None and qualifier.lower() in _SYSTEM_DATABASES:
            raise SQLGateError(f"Access to '{display}' is not allowed: system tables are not available")
        binding = self.resolver.resolve(qualifier, name) if self.resolver is not None else None
        if binding is None:
            raise SQLGateError(f"Resource '{display}' not found")
        if binding.subquery is None and not (binding.database and binding.table):
            raise SQLGateError(f"Resource '{display}' cannot be read")
        self.tables[(qualifier, name)] = None
        return binding

    def table_function(self, func: exp.Func, scope: Scope) -> None:
        name = func.name if isinstance(func, exp.Anonymous) else func.sql_name()
        self.table_functions[name] = None
        refusal = fn.table_function_refusal(name)
        if refusal:
            self.refuse(refusal)
        for child in func.iter_expressions():
            self.visit(child, scope)

    # expressions

    def visit_arg(self, value: object, scope: Scope) -> None:
        if isinstance(value, list):
            for item in value:
                if isinstance(item, exp.Expr):
                    self.visit(item, scope)
        elif isinstance(value, exp.Expr):
            self.visit(value, scope)

    def visit(self, root: exp.Expr, scope: Scope) -> None:
        """Depth-first, left to right, with an explicit stack: long AND/OR chains are deep trees."""
        stack: list[tuple[exp.Expr, Scope]] = [(root, scope)]
        while stack:
            node, scope = stack.pop()
            children = self.visit_one(node, scope)
            if children:
                stack.extend(reversed(children))

    def visit_one(self, node: exp.Expr, scope: Scope) -> list[tuple[exp.Expr, Scope]]:
        """Checks one node; returns the children still to visit."""
        if isinstance(node, exp.Query):
            self.query(node, scope)
            return []
        if isinstance(node, exp.Table):
            self.source(node, scope, None, from_table=False)
            return []
        if isinstance(node, exp.In) and self.in_(node, scope):
            return [(node.this, scope)]  # the right side is now a subquery over a bound table
        if isinstance(node, _STATEMENTS):
            self.refuse("Statements (EXPLAIN, DESCRIBE, SHOW, ...) are not allowed inside a query")
        children = node.iter_expressions()
        if isinstance(node, _NAMED_CALLS):
            self.call(node)
        elif isinstance(node, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
            self.refuse("Query parameters like {name:Type} are not allowed: pass values through the endpoint")
        elif isinstance(node, exp.Apply) and isinstance(node.expression, (exp.Var, exp.Identifier)):
            self.check_function(node.expression.name)
        elif isinstance(node, exp.Lambda):
            params = {p.name for p in node.expressions}
            return [(node.this, replace(scope, aliases=scope.aliases | params))]
        elif isinstance(node, exp.DataType) and node.this in _AGG_TYPES and node.expressions:
            head = node.expressions[0]
            refusal = fn.aggregate_refusal(head.name) if head.name else "invalid aggregate function type"
            if refusal:
                self.refuse(refusal)
            if isinstance(head, _NAMED_CALLS):  # its name is checked: visit only its arguments
                children = [*head.iter_expressions(), *node.expressions[1:]]
        return [(child, scope) for child in children]

    def check_function(self, name: str) -> None:
        if self.strict:
            refusal = fn.function_refusal(name)
            if refusal:
                raise SQLGateError(refusal[0].upper() + refusal[1:])

    def call(self, node: exp.Func) -> None:
        name = node.name
        self.check_function(name)
        if self.strict and name in fn.AGGREGATE_NAME_ARGUMENT:
            first = node.expressions[0] if node.expressions else None
            if not (isinstance(first, exp.Literal) and first.is_string):
                raise SQLGateError(f"{name}() needs the aggregate function name as a string literal")
            refusal = fn.aggregate_refusal(first.this)
            if refusal:
                raise SQLGateError(refusal[0].upper() + refusal[1:])

    def in_(self, node: exp.In, scope: Scope) -> bool:
        """`x IN name` reads the table `name` (ClickHouse also strips parentheses: `x IN (name)`).
        True when the right side was rewritten to a subquery."""
        target = node.args.get("field")
        if target is None and not node.args.get("query") and len(node.expressions) == 1:
            target = node.expressions[0]
            while isinstance(target, exp.Paren):
                target = target.this
        if not isinstance(target, exp.Column) or not isinstance(target.this, exp.Identifier):
            return False
        if target.args.get("db") is not None or target.args.get("catalog") is not None:
            self.refuse(f"Invalid table name after IN: '{target.sql(dialect=DIALECT)}'")
            return False
        qualifier = target.table or None
        name = target.name
        if qualifier is None and (name in scope.scalars or name in scope.aliases):
            return False
        if qualifier is None and name in scope.ctes:
            source = exp.select(exp.Star()).from_(exp.Table(this=_quoted(_cte_name(name))), copy=False)
        else:
            binding = self.bind(qualifier, name)
            if binding is None:
                return False
            source = _source(binding, final=False)
        node.set("field", None)
        node.set("expressions", [])
        node.set("query", exp.Subquery(this=source))
        return True


def _source(binding: TableBinding, final: bool, sample: bool = False) -> exp.Expr:
    """What replaces a bound table inside parentheses: the compiled subquery itself, or
    SELECT * FROM <physical table or subquery> [FINAL] [WHERE (<row filter>)]."""
    if binding.subquery is not None:
        if binding.row_filter is None and not sample:
            return exp.Var(this=binding.subquery)
        source: exp.Expr = exp.Subquery(this=exp.Var(this=binding.subquery))
    else:
        source = exp.Table(this=_quoted(binding.table or ""), db=_quoted(binding.database or ""))
        if final:
            source = exp.Final(this=source)
    select = exp.Select(expressions=[exp.Star()]).from_(source, copy=False)
    if binding.row_filter is not None:
        select.set("where", exp.Where(this=exp.Paren(this=exp.Var(this=binding.row_filter))))
    return select
