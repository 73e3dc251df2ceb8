"""The Query API: untrusted SQL from a token, through the compiler (templates, the SQL gate, name
resolution), to a locked-down engine connection; and the output formats shared with endpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tody.catalog.store import Catalog
from tody.engine.base import Engine, EngineError, ResultStream, Statistics
from tody.services.compiler import Compiler
from tody.services.errors import BadRequest, Forbidden, NotFound, TemplateStatus, Timeout
from tody.services.tokens import PIPES_READ, Principal
from tody.sql.gate import CompiledQuery, SQLGateError, tables_read
from tody.sql.templates import TemplateHTTPError


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
    statistics: Statistics | None = None  # complete for buffered formats, filled as a stream is read
    tables: tuple[tuple[str | None, str], ...] = ()  # logical names the query read

    @property
    def reads_only_service_sources(self) -> bool:
        """Queries over `tinybird.*` alone are not themselves recorded in pipe_stats_rt (as Tinybird)."""
        return bool(self.tables) and all(db == "tinybird" for db, _ in self.tables)


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


class QueryService:
    def __init__(self, catalog: Catalog, engine: Engine, compiler: Compiler):
        self.catalog = catalog
        self.engine = engine
        self.compiler = compiler

    def compile(self, principal: Principal, sql: str, pipeline: str | None = None) -> CompiledQuery:
        if not sql or not sql.strip():
            raise BadRequest("Missing query: pass the SQL as 'q' or as the request body")
        pipe = None
        if pipeline:
            pipe = self.catalog.pipe(principal.workspace.id, pipeline)
            if pipe is None:
                raise NotFound(f"Pipe '{pipeline}' not found")
            if not principal.has(PIPES_READ, pipe.name):
                raise Forbidden(
                    f"Not enough permissions: reading the nodes of pipe '{pipe.name}' needs PIPES:READ:{pipe.name}"
                )
        try:
            return self.compiler.compile_sql(principal, sql, pipe=pipe)
        except TemplateHTTPError as exc:  # error() or custom_error() in the query or in a node it reads
            raise TemplateStatus(exc.status, exc.message) from None

    def run(self, principal: Principal, sql: str, pipeline: str | None = None) -> QueryOutput:
        """Compile and run (or start streaming); engine errors before the first byte become 4xx."""
        compiled = self.compile(principal, sql, pipeline)
        output = self.execute(principal, compiled.sql, output_format(compiled.output_format))
        output.tables = compiled.tables
        return output

    def execute(self, principal: Principal, sql: str, fmt: OutputFormat) -> QueryOutput:
        try:
            if fmt.buffered:
                result = self.engine.query(sql, fmt.engine_format)
                return QueryOutput(fmt, body=result.data, statistics=result.statistics)
            stream = self.engine.stream(sql, fmt.engine_format)
            return QueryOutput(fmt, stream=stream, statistics=stream.statistics)
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
