"""Partial replace (`mode=replace&replace_condition=<SQL>`): the rows of a data source that match the
condition are replaced by the incoming rows that match it; incoming rows that do not match are left
out (and counted), existing rows that do not match stay.

How, and why this way: the incoming file is first imported into a staging copy of the table (as a full
replace does). Then a second copy, `new`, receives the staged rows that match, and — for every
partition those rows or the matching existing rows live in ("touched" partitions) — the existing rows
of that partition that do not match. Each touched partition of the data source is then swapped for its
counterpart in `new` with `ALTER TABLE … REPLACE PARTITION … FROM` (or `DROP PARTITION` when nothing
is left in it), all in one ALTER statement.

- A REPLACE PARTITION swaps the parts of one partition in a single step: a reader sees the old rows of
  that partition or the new ones, never neither. Partitions are swapped one after the other, so a query
  running while several partitions are swapped may see some old and some new, but never a partition
  without its rows. Untouched partitions are neither read nor rewritten: when the condition covers
  whole partitions (Tinybird asks that it includes the partition key), only those are copied; when it
  does not, the result is still exact, the partition's other rows are just copied along.
- The alternative, building a whole new table and `EXCHANGE TABLES`, is atomic across partitions but
  copies every row of the table and loses rows appended anywhere in the table meanwhile. Here only rows
  appended to a touched partition between the copy and the swap are lost — the caveat Tinybird
  documents for partial replaces (do not ingest into the partitions being replaced).
- A row matches when the condition is true; NULL counts as false, so an existing row whose condition
  is NULL is kept and an incoming one is left out (`ifNull(cond, 0)`), never both or neither.
"""

from __future__ import annotations

import uuid

from tody.catalog.store import DatasourceRecord
from tody.engine.base import Engine, EngineError, quote_identifier, quote_string
from tody.services.errors import BadRequest
from tody.sql.gate import SQLGateError, validate_expression


def check_condition(engine: Engine, database: str, rec: DatasourceRecord, condition: str) -> str:
    """The condition as the SQL gate regenerated it (columns of the data source and allow-listed
    functions only, no subqueries or tables), after the engine has type-checked it on the table."""
    if rec.engine.get("engine") == "Null":  # no partitions, no rows to keep
        raise BadRequest(f"replace_condition needs a MergeTree engine; '{rec.name}' uses the Null engine")
    try:
        checked = validate_expression(condition, [c["name"] for c in rec.columns])
    except SQLGateError as exc:
        raise BadRequest(f"Invalid replace_condition '{condition}': {exc}") from None
    table = f"{quote_identifier(database)}.{quote_identifier(rec.id)}"
    try:
        engine.execute(f"SELECT count() FROM {table} WHERE {matches(checked)} LIMIT 0")
    except EngineError as exc:
        if not exc.is_user_error:
            raise
        message = exc.message.split(". Stack trace")[0]
        raise BadRequest(f"Invalid replace_condition '{condition}': {message}") from None
    return checked


def matches(condition: str) -> str:
    return f"ifNull(({condition}), 0)"


def replace_matching(engine: Engine, database: str, table: str, staging: str, condition: str) -> int:
    """Replace the rows of `table` matching `condition` by the rows of `staging` matching it (see the
    module docstring). Returns how many staged rows were kept."""
    db = quote_identifier(database)
    target = f"{db}.{quote_identifier(table)}"
    staged = f"{db}.{quote_identifier(staging)}"
    new = f"{db}.{quote_identifier(f'{table}_partial_{uuid.uuid4().hex[:8]}')}"
    # identical blocks (e.g. equal rows in two partitions) must not be dropped as duplicates
    settings = {"insert_deduplicate": 0}
    engine.execute(f"CREATE TABLE {new} AS {target}")
    try:
        engine.execute(
            f"INSERT INTO {new} SELECT * FROM {staged} WHERE {matches(condition)}", settings=settings
        )
        kept = _count(engine, new)
        touched = _partitions(engine, f"{target} WHERE {matches(condition)}") | _partitions(engine, new)
        if not touched:
            return kept
        ids = ", ".join(quote_string(p) for p in sorted(touched))
        engine.execute(
            f"INSERT INTO {new} SELECT * FROM {target} "
            f"WHERE _partition_id IN ({ids}) AND NOT {matches(condition)}",
            settings=settings,
        )
        filled = _partitions(engine, new)
        commands = [
            f"REPLACE PARTITION ID {quote_string(p)} FROM {new}"
            if p in filled
            else f"DROP PARTITION ID {quote_string(p)}"
            for p in sorted(touched)
        ]
        engine.execute(f"ALTER TABLE {target} {', '.join(commands)}")
        return kept
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {new} SYNC")


def _partitions(engine: Engine, source: str) -> set[str]:
    data = engine.execute(f"SELECT DISTINCT _partition_id FROM {source}", "TabSeparatedRaw").data
    return set(data.decode().split())


def _count(engine: Engine, table: str) -> int:
    return int(engine.execute(f"SELECT count() FROM {table}", "TabSeparated").data.strip() or 0)
