"""What an organization's workspaces consume, and the `organization.*` service data sources.

`report` answers `GET /v0/organizations/{id}/consumption`: per workspace, storage now (rows and bytes
per data source, from the engine's active parts), and per day the rows and bytes ingested
(`datasources_ops_log`), the requests served and the bytes they read (`pipe_stats`). It runs on the
platform's own engine connection with SQL built here from catalog values, never from user SQL.

`register` makes `organization.<name>` readable from SQL for organization admins: each name is a
subquery built from the catalog (every value quoted) over the engine's own tables, bound by the
compiler like `tinybird.*` (see `compiler._Scope.resolve`). Physical names stay inside the subquery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import orjson

from tody.catalog.store import Catalog, OrganizationRecord, WorkspaceRecord
from tody.engine.base import Engine, quote_string
from tody.services.compiler import SERVICE_DATABASE, Compiler
from tody.services.errors import BadRequest

DEFAULT_DAYS = 7
MAX_DAYS = 90
# Operations that bring rows in from outside (files, URLs, the Events API); copies and populates
# derive rows from data already stored, so they are not ingestion.
INGEST_EVENTS = ("append", "append-hfi", "replace", "partial_replace")
QUERY_API = "query_api"  # pipe_id (and pipe_name) of Query API requests in pipe_stats


# -- GET /v0/organizations/{id}/consumption ---------------------------------------------------------


def parse_days(raw: str | None) -> int:
    """`days`: a whole number from 1 to MAX_DAYS (DEFAULT_DAYS when absent)."""
    if raw is None or raw.strip() == "":
        return DEFAULT_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(
            f"'days' must be a whole number of days from 1 to {MAX_DAYS} (default {DEFAULT_DAYS})"
        )
    return days


def report(catalog: Catalog, engine: Engine, org: OrganizationRecord, days: int) -> dict:
    """The consumption of every workspace of `org` (see module docstring)."""
    workspaces = org_workspaces(catalog, org.id)
    today = datetime.now(UTC).date()
    dates = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    storage = _parts(engine, [w.database for w in workspaces])
    ingested = _daily_ingestion(engine, workspaces, dates[0])
    requests = _daily_requests(engine, workspaces, dates[0])
    out = []
    for w in workspaces:
        datasources = []
        for rec in sorted(catalog.datasources(w.id).values(), key=lambda r: r.created_at):
            rows, size = storage.get((w.database, rec.id), (0, 0))
            q_rows, q_size = storage.get((w.database, rec.id + "_quarantine"), (0, 0))
            datasources.append(
                {
                    "name": rec.name,
                    "rows": rows,
                    "bytes": size,
                    "quarantine_rows": q_rows,
                    "quarantine_bytes": q_size,
                }
            )
        daily = [
            {"date": d, **_EMPTY_DAY, **ingested.get((w.id, d), {}), **requests.get((w.id, d), {})}
            for d in dates
        ]
        out.append(
            {
                "id": w.id,
                "name": w.name,
                "storage": {**_sum(datasources, _STORAGE_FIELDS), "datasources": datasources},
                "daily": daily,
                "totals": _sum(daily, _DAY_FIELDS),
            }
        )
    totals_daily = [
        {"date": d, **_sum([ws["daily"][i] for ws in out], _DAY_FIELDS)} for i, d in enumerate(dates)
    ]
    return {
        "organization": {"id": org.id, "name": org.name},
        "days": days,
        "from": dates[0],
        "to": dates[-1],
        "workspaces": out,
        "totals": {
            "storage": _sum([ws["storage"] for ws in out], _STORAGE_FIELDS),
            **_sum(totals_daily, _DAY_FIELDS),
            "daily": totals_daily,
        },
    }


_STORAGE_FIELDS = ("rows", "bytes", "quarantine_rows", "quarantine_bytes")
_DAY_FIELDS = (
    "ingested_rows",
    "ingested_bytes",
    "quarantined_rows",
    "requests",
    "query_api_requests",
    "read_bytes",
)
_EMPTY_DAY = dict.fromkeys(_DAY_FIELDS, 0)


def _sum(items: Sequence[Mapping[str, int]], fields: Sequence[str]) -> dict[str, int]:
    return {f: sum(int(i[f]) for i in items) for f in fields}


def org_workspaces(catalog: Catalog, organization_id: str) -> list[WorkspaceRecord]:
    return [w for w in catalog.workspaces() if w.organization_id == organization_id]


def _rows(engine: Engine, sql: str) -> list[list]:
    return orjson.loads(engine.execute(sql, "JSONCompact").data)["data"]


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(quote_string(v) for v in values) + ")"


def _parts(engine: Engine, databases: Sequence[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(database, table) → (rows, bytes on disk) of the active parts."""
    if not databases:
        return {}
    sql = (
        "SELECT database, table, sum(rows), sum(bytes_on_disk) FROM system.parts "
        f"WHERE active AND database IN {_in_list(databases)} GROUP BY database, table"
    )
    return {(db, table): (int(rows), int(size)) for db, table, rows, size in _rows(engine, sql)}


def _daily_ingestion(engine: Engine, workspaces: Sequence[WorkspaceRecord], since: str) -> dict:
    if not workspaces:
        return {}
    # The ops log records the bytes received as read_bytes (written_bytes is only known for copies).
    sql = (
        "SELECT workspace_id, toString(toDate(timestamp)) AS day, sum(written_rows), sum(read_bytes), "
        f"sum(written_rows_quarantine) FROM {SERVICE_DATABASE}.datasources_ops_log "
        f"WHERE workspace_id IN {_in_list([w.id for w in workspaces])} "
        f"AND event_type IN {_in_list(INGEST_EVENTS)} AND toDate(timestamp) >= toDate({quote_string(since)}) "
        "GROUP BY workspace_id, day"
    )
    return {
        (ws, day): {"ingested_rows": int(rows), "ingested_bytes": int(size), "quarantined_rows": int(bad)}
        for ws, day, rows, size, bad in _rows(engine, sql)
    }


def _daily_requests(engine: Engine, workspaces: Sequence[WorkspaceRecord], since: str) -> dict:
    if not workspaces:
        return {}
    sql = (
        f"SELECT workspace_id, toString(date) AS day, sumIf(view_count, pipe_id != {quote_string(QUERY_API)}), "
        f"sumIf(view_count, pipe_id = {quote_string(QUERY_API)}), sum(read_bytes_sum) "
        f"FROM {SERVICE_DATABASE}.pipe_stats WHERE workspace_id IN {_in_list([w.id for w in workspaces])} "
        f"AND date >= toDate({quote_string(since)}) GROUP BY workspace_id, day"
    )
    return {
        (ws, day): {"requests": int(endpoint), "query_api_requests": int(query_api), "read_bytes": int(read)}
        for ws, day, endpoint, query_api, read in _rows(engine, sql)
    }


# -- organization.* service data sources ------------------------------------------------------------

Builder = Callable[[Catalog, str], str]  # (catalog, organization id) → subquery


def register(compiler: Compiler, service_columns: Mapping[str, Sequence[str]]) -> None:
    """Make `organization.<name>` readable (by organization admins; the compiler checks who asks)."""
    compiler.organization_sources["workspaces"] = _workspaces_source
    compiler.organization_sources["datasources_storage"] = _storage_source
    for name, columns in service_columns.items():
        compiler.organization_sources[name] = _service_source(name, tuple(columns))


def _values(structure: str, rows: Sequence[Sequence[str]]) -> str:
    """`SELECT * FROM values(…)` of literal rows, every value a quoted string; no rows, no result."""
    if not rows:
        width = structure.count(",") + 1
        rows, where = [[""] * width], " WHERE 0"
    else:
        where = ""
    tuples = ", ".join("(" + ", ".join(quote_string(v) for v in row) + ")" for row in rows)
    return f"SELECT * FROM values({quote_string(structure)}, {tuples}){where}"


def _seconds(value: date | datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _workspaces_source(catalog: Catalog, organization_id: str) -> str:
    rows = [
        [w.id, w.name, w.organization_id, _seconds(w.created_at)]
        for w in org_workspaces(catalog, organization_id)
    ]
    return _values("workspace_id String, name String, organization_id String, created_at DateTime", rows)


def _storage_source(catalog: Catalog, organization_id: str) -> str:
    """One row per data source of the org's workspaces, with its size now (active parts)."""
    workspaces = org_workspaces(catalog, organization_id)
    rows = [
        [w.id, w.name, rec.id, rec.name, w.database, rec.id, rec.id + "_quarantine"]
        for w in workspaces
        for rec in sorted(catalog.datasources(w.id).values(), key=lambda r: r.created_at)
    ]
    names = _values(
        "workspace_id String, workspace_name String, datasource_id String, datasource_name String, "
        "db String, tbl String, qtbl String",
        rows,
    )
    databases = _in_list([w.database for w in workspaces] or [""])
    parts = (
        "SELECT p.database AS db, p.table AS tbl, sum(p.rows) AS rows, sum(p.bytes_on_disk) AS bytes "
        f"FROM system.parts AS p WHERE p.active AND p.database IN {databases} GROUP BY db, tbl"
    )
    return (
        "SELECT m.workspace_id AS workspace_id, m.workspace_name AS workspace_name, "
        "m.datasource_id AS datasource_id, m.datasource_name AS datasource_name, "
        "toUInt64(ifNull(d.rows, 0)) AS rows, toUInt64(ifNull(d.bytes, 0)) AS bytes, "
        "toUInt64(ifNull(q.rows, 0)) AS rows_quarantine, toUInt64(ifNull(q.bytes, 0)) AS bytes_quarantine, "
        f"now() AS timestamp FROM ({names}) AS m "
        f"LEFT JOIN ({parts}) AS d ON d.db = m.db AND d.tbl = m.tbl "
        f"LEFT JOIN ({parts}) AS q ON q.db = m.db AND q.tbl = m.qtbl"
    )


def _service_source(name: str, columns: tuple[str, ...]) -> Builder:
    """The rows of `tody_service.<name>` of every workspace of the org, with the workspace's name."""
    cols = ", ".join(f"`{c}`" for c in columns)

    def build(catalog: Catalog, organization_id: str) -> str:
        workspaces = org_workspaces(catalog, organization_id)
        if not workspaces:
            where, workspace_name = "0", "''"
        else:
            ids = [quote_string(w.id) for w in workspaces]
            names = [quote_string(w.name) for w in workspaces]
            where = f"workspace_id IN ({', '.join(ids)})"
            workspace_name = f"transform(workspace_id, [{', '.join(ids)}], [{', '.join(names)}], '')"
        return (
            f"SELECT workspace_id, {workspace_name} AS workspace_name, {cols} "
            f"FROM `{SERVICE_DATABASE}`.`{name}` WHERE {where}"
        )

    return build
