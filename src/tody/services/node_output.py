"""What a node's query produces, checked against the data source it writes into (materialized views
and copies): every column exists there and is writable, its type converts, and every column of the
target the query leaves out has a DEFAULT. A mismatch is a 400 naming the column and both types."""

from __future__ import annotations

from typing import Any

from tody.engine.base import Engine, EngineError, quote_string
from tody.services.errors import BadRequest, Forbidden


def output_columns(engine: Engine, node_name: str, select: str, what: str) -> list[tuple[str, str]]:
    """(name, type) of each column `select` returns, from the engine."""
    try:
        res = engine.execute(f"DESCRIBE TABLE ({select})", "TabSeparatedRaw")
    except EngineError as exc:
        raise BadRequest(f"[node {node_name}] the {what} query does not run: {exc.message}") from None
    return [(p[0], p[1]) for p in (ln.split("\t") for ln in res.data.decode().splitlines()) if len(p) > 1]


def converts(engine: Engine, source: str, target: str) -> bool:
    """Whether the engine converts type `source` to `target` at all (on an empty typed input: the check
    is about the types, not about any value)."""
    structure = quote_string(f"x {source}")
    try:
        engine.execute(f"SELECT CAST(x, {quote_string(target)}) FROM format(JSONEachRow, {structure}, '')")
    except EngineError:
        return False
    return True


def check_output(engine: Engine, node_name: str, target, output: list[tuple[str, str]]) -> None:
    declared = {c["name"]: c for c in target.columns}
    where = f"[node {node_name}]"
    for col, type_ in output:
        column = declared.get(col)
        if column is None:
            raise BadRequest(
                f"{where} column '{col}' ({type_}) is not a column of Data Source '{target.name}'; "
                f"its columns are {', '.join(declared)}"
            )
        if column.get("default") and column.get("default_kind") in ("MATERIALIZED", "ALIAS"):
            raise BadRequest(
                f"{where} column '{col}' of Data Source '{target.name}' is {column['default_kind']} and "
                "cannot be written; leave it out of the query"
            )
        wanted = column["type"]
        if type_ != wanted and not converts(engine, type_, wanted):
            raise BadRequest(
                f"{where} column '{col}' is {type_} in the node but {wanted} in Data Source "
                f"'{target.name}'; cast it in the query or change the column"
            )
    produced = {col for col, _ in output}
    missing = [n for n, c in declared.items() if n not in produced and not c.get("default")]
    if missing:
        raise BadRequest(
            f"{where} the node does not produce column(s) {', '.join(missing)} of Data Source "
            f"'{target.name}', which have no DEFAULT"
        )


def check_definer(compiler: Any, principal: Any, pipe: Any, node: Any, target: str, values: Any) -> None:
    """A view or a copy runs with the workspace's rights, so whoever defines one must hold those
    rights themselves: append to its target, and read everything the node reads, whole (a row filter
    of the token would not hold inside the view; the two compiles differ exactly when one applies)."""
    if principal.is_admin:
        return
    as_caller = compiler.compile_node(principal, pipe, node.name, values, check_read=True).sql
    principal.require_append(target)
    as_workspace = compiler.compile_node(principal.as_workspace(), pipe, node.name, values).sql
    if as_caller != as_workspace:
        raise Forbidden(
            f"[node {node.name}] this token reads some of the node's sources through row filters or fixed "
            "params; a view or copy would write rows it cannot see. Define it with a token that reads them whole"
        )
