"""API Endpoints: calling a pipe's published node with typed parameters, in any output format."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from tody.catalog.store import PipeRecord
from tody.services.compiler import Compiler
from tody.services.errors import BadRequest, Forbidden, NotFound, TemplateStatus
from tody.services.pipes import PipeService
from tody.services.query import FORMATS as QUERY_FORMATS
from tody.services.query import OutputFormat, QueryOutput, QueryService
from tody.services.tokens import Principal
from tody.sql.templates import TemplateHTTPError

# Request parameters that belong to the API, never to the template.
RESERVED = frozenset({"token", "q", "cli_version", "from", "__tb__semver", "release_replacements", "debug"})

# Endpoint extensions, in terms of the Query API's formats (one definition per output format).
FORMATS: dict[str, OutputFormat] = {
    "json": QUERY_FORMATS["JSON"],
    "csv": QUERY_FORMATS["CSV"],
    "csvwithnames": QUERY_FORMATS["CSVWITHNAMES"],
    "ndjson": QUERY_FORMATS["JSONEACHROW"],
    "parquet": QUERY_FORMATS["PARQUET"],
    "prometheus": OutputFormat("Prometheus", "text/plain; version=0.0.4; charset=utf-8", "prometheus"),
}


@dataclass
class EndpointCall:
    pipe: PipeRecord
    output: QueryOutput
    request_id: str


class EndpointService:
    def __init__(self, pipes: PipeService, compiler: Compiler, query: QueryService):
        self.pipes = pipes
        self.compiler = compiler
        self.query = query

    def published(self, principal: Principal, name: str) -> PipeRecord:
        pipe = self.pipes.catalog.pipe(principal.workspace.id, name)
        if pipe is None:
            raise NotFound(f"The pipe '{name}' does not exist")
        if not self.pipes.can_read(principal, pipe):
            raise Forbidden(f"Not enough permissions: this token needs PIPES:READ:{pipe.name}")
        if pipe.endpoint_node is None:
            raise NotFound(
                f"The pipe '{pipe.name}' has no published endpoint; publish one of its nodes first"
            )
        return pipe

    def call(
        self,
        principal: Principal,
        name: str,
        extension: str,
        params: Mapping[str, str | list[str]],
        q: str | None,
    ) -> EndpointCall:
        fmt = FORMATS.get(extension.lower())
        if fmt is None:
            raise NotFound(f"Unknown endpoint format '.{extension}'; use one of: .{', .'.join(FORMATS)}")
        pipe = self.published(principal, name)
        values = {k: v for k, v in params.items() if k not in RESERVED}
        endpoint = pipe.endpoint_node
        assert endpoint is not None
        try:
            compiled = self.compiler.compile_node(principal, pipe, endpoint.name, values)
            sql = compiled.sql
            if q:
                over = self.compiler.compile_sql(principal, q, extra={"_": sql}, params=values)
                if over.output_format:
                    raise BadRequest("Leave FORMAT out of 'q': the endpoint's extension chooses the format")
                sql = over.sql
        except TemplateHTTPError as exc:
            raise TemplateStatus(exc.status, exc.message) from None
        output = self.query.execute(principal, sql, fmt)
        return EndpointCall(pipe=pipe, output=output, request_id=uuid.uuid4().hex)
