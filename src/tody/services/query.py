"""The Query API: untrusted SQL from a token, through the gate, to a locked-down engine connection.

Compiled queries are cached per (token, catalog generation, SQL): repeated dashboards and endpoint
calls skip parsing, and any catalog write (a rename, a new token) invalidates every entry at once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from tody.catalog.store import Catalog
from tody.engine.base import Engine, EngineError, ResultStream
from tody.services.errors import BadRequest, Forbidden, Timeout
from tody.services.tokens import Principal
from tody.sql.gate import (
    CompiledQuery,
    SQLGateError,
    TableBinding,
    compile_select,
    tables_read,
    validate_expression,
)


@dataclass(frozen=True)
class OutputFormat:
    engine_format: str
    content_type: str
    extension: str
    # JSON documents are answered whole: chDB's streaming mode leaves their statistics footer at zero
    # and drops rows_before_limit_at_least. Row formats stream with constant memory.
    buffered: bool = False


@dataclass
class QueryOutput:
    format: OutputFormat
    body: bytes | None = None  # buffered formats
    stream: ResultStream | None = None  # streamed formats


# What a trailing `FORMAT x` may ask for; the server chooses the engine format (DESIGN §3).
FORMATS: dict[str, OutputFormat] = {
    "JSON": OutputFormat("JSON", "application/json", "json", buffered=True),
    "JSONCOMPACT": OutputFormat("JSONCompact", "application/json", "json", buffered=True),
    "JSONEACHROW": OutputFormat("JSONEachRow", "application/x-ndjson", "ndjson"),
    "NDJSON": OutputFormat("JSONEachRow", "application/x-ndjson", "ndjson"),
    "CSV": OutputFormat("CSV", "text/csv; charset=utf-8", "csv"),
    "CSVWITHNAMES": OutputFormat("CSVWithNames", "text/csv; charset=utf-8", "csv"),
    "TSV": OutputFormat("TabSeparated", "text/tab-separated-values; charset=utf-8", "tsv"),
    "TABSEPARATED": OutputFormat("TabSeparated", "text/tab-separated-values; charset=utf-8", "tsv"),
    "TSVWITHNAMES": OutputFormat("TabSeparatedWithNames", "text/tab-separated-values; charset=utf-8", "tsv"),
    "TABSEPARATEDWITHNAMES": OutputFormat(
        "TabSeparatedWithNames", "text/tab-separated-values; charset=utf-8", "tsv"
    ),
    "PARQUET": OutputFormat("Parquet", "application/vnd.apache.parquet", "parquet"),
}
DEFAULT_FORMAT = "JSON"

_PHYSICAL_DB = re.compile(r"[`\"]?w_[0-9a-f]{32}[`\"]?\.")
_PHYSICAL_TABLE = re.compile(r"t_[0-9a-f]{32}")
_GATE_CTE = re.compile(r"_tody_cte_")
# The engine quotes the analysed query ("In scope SELECT …"), which would show row filters
# and physical names: the user gets the reason, never the rewritten query.
_SCOPE_TEXT = re.compile(r"\.?\s*In scope .*$", re.S)


def output_format(name: str | None) -> OutputFormat:
    key = (name or DEFAULT_FORMAT).upper()
    if key not in FORMATS:
        allowed = "JSON, JSONCompact, JSONEachRow, CSV, CSVWithNames, TSV, TSVWithNames, Parquet"
        raise BadRequest(f"Format '{name}' is not supported; use one of: {allowed}")
    return FORMATS[key]


class WorkspaceResolver:
    """Resolves the names a token may read in its workspace to physical tables (with row filters)."""

    def __init__(self, catalog: Catalog, principal: Principal):
        self.catalog = catalog
        self.principal = principal

    def resolve(self, database: str | None, name: str) -> TableBinding | None:
        if database is not None:
            return None
        rec = self.catalog.datasource(self.principal.workspace.id, name)
        if rec is None:
            return None
        if not self.principal.can_read_datasource(rec.name):
            raise Forbidden(
                f"Not enough permissions to read Data Source '{rec.name}': "
                f"the token needs DATASOURCES:READ:{rec.name}"
            )
        row_filter = self.principal.datasource_filter(rec.name)
        if row_filter is not None:
            try:
                row_filter = validate_expression(row_filter, [c["name"] for c in rec.columns])
            except SQLGateError as exc:
                raise Forbidden(f"The row filter of this token on '{rec.name}' is not valid: {exc}") from None
        return TableBinding(database=self.principal.workspace.database, table=rec.id, row_filter=row_filter)


class QueryService:
    def __init__(
        self, catalog: Catalog, engine: Engine, *, max_sql_bytes: int = 256_000, cache_size: int = 4096
    ):
        self.catalog = catalog
        self.engine = engine
        self.max_sql_bytes = max_sql_bytes
        self._cache: OrderedDict[tuple, CompiledQuery] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, principal: Principal, sql: str) -> CompiledQuery:
        key = (principal.token.id, self.catalog.generation, sql)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        if not sql or not sql.strip():
            raise BadRequest("Missing query: pass the SQL as 'q' or as the request body")
        try:
            compiled = compile_select(
                sql, WorkspaceResolver(self.catalog, principal), self.engine, max_bytes=self.max_sql_bytes
            )
        except SQLGateError as exc:
            raise BadRequest(str(exc)) from None
        with self._lock:
            self._cache[key] = compiled
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def run(self, principal: Principal, sql: str) -> QueryOutput:
        """Compile and run (or start streaming); engine errors before the first byte become 4xx."""
        compiled = self.compile(principal, sql)
        fmt = output_format(compiled.output_format)
        try:
            if fmt.buffered:
                return QueryOutput(fmt, body=self.engine.query(compiled.sql, fmt.engine_format).data)
            return QueryOutput(fmt, stream=self.engine.stream(compiled.sql, fmt.engine_format))
        except EngineError as exc:
            raise self.user_error(principal, exc) from None

    def user_error(self, principal: Principal, exc: EngineError) -> Exception:
        message = self.logical_names(principal, exc.message)
        if exc.is_timeout:
            return Timeout(f"The query took longer than the time limit and was stopped: {message}")
        if exc.code is None or not exc.is_user_error:
            return exc
        return BadRequest(f"[Error] {message}")

    def logical_names(self, principal: Principal, message: str) -> str:
        """Engine messages name physical tables; show the user the names they wrote."""
        by_id = {r.id: r.name for r in self.catalog.datasources(principal.workspace.id).values()}
        message = _SCOPE_TEXT.sub("", message)
        message = _GATE_CTE.sub("", _PHYSICAL_DB.sub("", message))
        return _PHYSICAL_TABLE.sub(lambda m: by_id.get(m.group(0), "<table>"), message)

    @staticmethod
    def tables(sql: str, *, table_functions: bool = True) -> list[list[str]]:
        try:
            return [list(t) for t in tables_read(sql, table_functions=table_functions)]
        except SQLGateError as exc:
            raise BadRequest(str(exc)) from None
