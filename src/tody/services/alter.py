"""Changing a data source in place (`POST /v0/datasources/{name}/alter`, what `tb push --force` calls).

Only changes that keep every stored row valid are applied: new columns after the existing ones,
the description, and the TTL. Anything else (a changed or removed column, new indexes) is refused
with what differs, so no data is rewritten behind the user's back. `dry=true` lists the operations.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

from tody.catalog.store import DatasourceRecord
from tody.datafiles.datasource import datasource_from_params
from tody.engine.base import quote_identifier
from tody.engine.ddl import Column, DDLError, column_sql
from tody.services.datasources import DatasourceService, table_name
from tody.services.errors import BadRequest
from tody.services.ingest.quarantine import EXTRA_COLUMNS, quarantine_name
from tody.services.tokens import DATASOURCES_CREATE, Principal
from tody.sql.gate import validate_expression
from tody.sql.walk import SQLGateError

NOTHING = "There were no operations to perform"


def _same(a: Column, b: Column) -> bool:
    return (a.name, a.type, a.default, a.default_kind, a.codec, a.jsonpath) == (
        b.name,
        b.type,
        b.default,
        b.default_kind,
        b.codec,
        b.jsonpath,
    )


def _describe(c: Column) -> str:
    return column_sql(c) + (f" `json:{c.jsonpath}`" if c.jsonpath else "")


class DatasourceAlter:
    def __init__(self, datasources: DatasourceService):
        self.datasources = datasources

    def alter(
        self, principal: Principal, rec: DatasourceRecord, params: Mapping[str, str], *, dry: bool
    ) -> dict:
        principal.require(DATASOURCES_CREATE)
        svc = self.datasources
        workspace = principal.workspace
        old = [Column(**c) for c in rec.columns]
        table = f"{quote_identifier(workspace.database)}.{quote_identifier(table_name(rec))}"
        quarantine = (
            f"{quote_identifier(workspace.database)}.{quote_identifier(quarantine_name(table_name(rec)))}"
        )
        operations: list[str] = []
        statements: list[str] = []
        changes: dict = {}

        if params.get("schema"):
            try:
                new = datasource_from_params({"schema": params["schema"]}).columns
            except (DDLError, ValueError) as exc:
                raise BadRequest(f"The new schema does not parse: {exc}") from None
            kept = new[: len(old)]
            if len(new) < len(old) or not all(_same(a, b) for a, b in zip(old, kept, strict=True)):
                differ = [
                    f"{_describe(a)} → {_describe(b) if b else '(removed)'}"
                    for a, b in zip(old, [*kept, *[None] * (len(old) - len(kept))], strict=True)
                    if b is None or not _same(a, b)
                ]
                raise BadRequest(
                    "Only new columns after the existing ones can be added in place; these existing columns "
                    f"differ: {'; '.join(differ)}. Create a new data source (and copy the rows) instead"
                )
            names = [c.name for c in new]
            last = old[-1].name
            for col in new[len(old) :]:
                try:
                    if col.default:
                        col = dataclasses.replace(col, default=validate_expression(col.default, names))
                    definition = column_sql(col)
                except (DDLError, SQLGateError) as exc:
                    raise BadRequest(f"Column '{col.name}': {exc}") from None
                operations.append(f"ADD COLUMN {definition}")
                statements.append(f"ALTER TABLE {table} ADD COLUMN {definition}")
                if col.name not in EXTRA_COLUMNS:
                    statements.append(
                        f"ALTER TABLE {quarantine} ADD COLUMN IF NOT EXISTS {quote_identifier(col.name)} "
                        f"Nullable(String) AFTER {quote_identifier(last)}"
                    )
                    last = col.name
            if len(new) > len(old):
                changes["columns"] = [dataclasses.asdict(c) for c in new]

        if "description" in params and (params.get("description") or "") != (rec.description or ""):
            operations.append("MODIFY DESCRIPTION")
            changes["description"] = params.get("description") or ""

        if "ttl" in params:
            ttl = (params.get("ttl") or "").strip()
            current = rec.engine.get("ttl") or ""
            if ttl.lower() in ("", "false"):
                if current:
                    operations.append("REMOVE TTL")
                    statements.append(f"ALTER TABLE {table} REMOVE TTL")
                    changes["engine"] = {**rec.engine, "ttl": None}
            elif ttl != current:
                try:
                    checked = validate_expression(
                        ttl, [c["name"] for c in changes.get("columns", rec.columns)]
                    )
                except SQLGateError as exc:
                    raise BadRequest(f"The TTL is not valid: {exc}") from None
                operations.append(f"MODIFY TTL {checked}")
                statements.append(f"ALTER TABLE {table} MODIFY TTL {checked}")
                changes["engine"] = {**rec.engine, "ttl": ttl}

        if params.get("indexes") and params["indexes"].strip() not in ("", "[]"):
            raise BadRequest("Changing indexes in place is not supported: create a new data source instead")
        if not operations:
            raise BadRequest(f"{NOTHING}: the data source already has this schema, description and TTL")

        dependencies = sorted(svc.dependents(workspace, rec))
        if not dry:
            started = time.perf_counter()
            with svc.hold.exclusive(workspace.id):  # no insert halfway through the ALTERs
                for statement in statements:
                    svc._run_ddl(statement)
                svc.catalog.update_datasource(rec.id, **changes)
            rec = svc.get(workspace, rec.id)
            svc.log_operation(workspace, rec, "alter", started, options={"operations": operations})
        return {"operations": operations, "dependencies": dependencies, "datasource": svc.describe(rec)}
