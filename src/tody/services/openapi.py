"""OpenAPI 3.0 for a workspace's endpoints, from the parameters their templates declare and the
columns their SQL returns (read from the engine with `LIMIT 0`, so types are the engine's own)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from tody.engine.base import Engine, EngineError
from tody.services.compiler import Compiler
from tody.services.endpoints import FORMATS
from tody.services.errors import ServiceError
from tody.services.pipes import PipeService, sample_values
from tody.services.tokens import Principal

_INT = re.compile(r"^U?Int(8|16|32|64|128|256)$")
_RANGES = {
    "Int8": (-(2**7), 2**7 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1),
    "UInt64": (0, 2**64 - 1),
}


def param_schema(type_name: str) -> dict[str, Any]:
    """JSON schema of a template parameter type (`Int32`, `Array(String)`, `DateTime` …)."""
    if type_name.startswith("Array(") and type_name.endswith(")"):
        return {"type": "array", "items": param_schema(type_name[6:-1].strip().strip("'\""))}
    if _INT.match(type_name) or type_name in ("Int", "Integer"):
        schema: dict[str, Any] = {"type": "integer"}
        if type_name in _RANGES:
            schema["minimum"], schema["maximum"] = _RANGES[type_name]
        elif type_name.startswith("UInt"):
            schema["minimum"] = 0
        return schema
    if type_name.startswith("Float"):
        return {"type": "number"}
    if type_name == "Boolean":
        return {"type": "boolean"}
    if type_name == "Date":
        return {"type": "string", "format": "date"}
    if type_name.startswith("DateTime"):
        return {"type": "string", "format": "date-time", "example": "2026-01-01 00:00:00"}
    if type_name == "UUID":
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}


def column_schema(ch_type: str) -> dict[str, Any]:
    inner = re.sub(r"^(LowCardinality|Nullable)\((.*)\)$", r"\2", ch_type)
    inner = re.sub(r"^(LowCardinality|Nullable)\((.*)\)$", r"\2", inner)
    if inner.startswith("Array("):
        return {"type": "array", "items": column_schema(inner[6:-1])}
    if _INT.match(inner):
        return {"type": "integer"}
    if inner.startswith(("Float", "Decimal")):
        return {"type": "number"}
    if inner in ("Bool", "Boolean"):
        return {"type": "boolean"}
    if inner.startswith(("Map(", "Tuple(", "JSON")):
        return {"type": "object"}
    return {"type": "string"}


class OpenAPIService:
    def __init__(self, pipes: PipeService, compiler: Compiler, engine: Engine):
        self.pipes = pipes
        self.compiler = compiler
        self.engine = engine

    def document(self, principal: Principal, host: str) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for pipe in self.pipes.readable(principal):
            endpoint = pipe.endpoint_node
            if endpoint is None:
                continue
            parameters = [self._parameter(p) for p in endpoint.options.get("params", [])]
            parameters += [
                {
                    "name": "q",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "SQL to run over the endpoint's result, which is the table `_`",
                },
            ]
            columns = self._columns(principal, pipe, endpoint)
            for ext in ("json", "csv", "ndjson", "parquet"):
                paths[f"/v0/pipes/{pipe.name}.{ext}"] = {
                    "get": {
                        "operationId": f"{pipe.name}_{ext}",
                        "summary": pipe.description or f"Endpoint {pipe.name}",
                        "description": endpoint.description or pipe.description or "",
                        "parameters": parameters,
                        "responses": self._responses(ext, columns),
                    }
                }
        return {
            "openapi": "3.0.3",
            "info": {
                "title": f"{principal.workspace.name} endpoints",
                "version": "1.0.0",
                "description": "API Endpoints published in this workspace.",
            },
            "servers": [{"url": host}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                    "tokenParam": {"type": "apiKey", "in": "query", "name": "token"},
                },
                "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}},
            },
            "security": [{"bearerAuth": []}, {"tokenParam": []}],
            "paths": paths,
        }

    @staticmethod
    def _parameter(p: dict[str, Any]) -> dict[str, Any]:
        schema = param_schema(p.get("type") or "String")
        if p.get("default") is not None:
            schema["default"] = p["default"]
        out: dict[str, Any] = {
            "name": p["name"],
            "in": "query",
            "required": bool(p.get("required")),
            "schema": schema,
        }
        if p.get("description"):
            out["description"] = p["description"]
        if p.get("example") is not None:
            out["example"] = p["example"]
        if schema.get("type") == "array":
            out["style"], out["explode"] = "form", False
        return out

    def _columns(self, principal: Principal, pipe, endpoint) -> list[tuple[str, str]]:
        values = sample_values(endpoint.sql)
        if values is None:
            return []
        try:
            compiled = self.compiler.compile_node(principal, pipe, endpoint.name, values)
            meta = orjson.loads(self.engine.query(f"SELECT * FROM ({compiled.sql}) LIMIT 0", "JSON").data)[
                "meta"
            ]
        except (ServiceError, EngineError):
            return []
        return [(m["name"], m["type"]) for m in meta]

    @staticmethod
    def _responses(ext: str, columns: list[tuple[str, str]]) -> dict[str, Any]:
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        row = {"type": "object", "properties": {name: column_schema(t) for name, t in columns}}
        if ext == "json":
            content = {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "meta": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                                },
                            },
                            "data": {"type": "array", "items": row},
                            "rows": {"type": "integer"},
                            "rows_before_limit_at_least": {"type": "integer"},
                            "statistics": {
                                "type": "object",
                                "properties": {
                                    "elapsed": {"type": "number"},
                                    "rows_read": {"type": "integer"},
                                    "bytes_read": {"type": "integer"},
                                },
                            },
                        },
                    }
                }
            }
        else:
            content = {FORMATS[ext].content_type.split(";")[0]: {"schema": {"type": "string"}}}
        return {
            "200": {"description": "The endpoint's result", "content": content},
            "400": {"description": "A parameter or the query is not valid", "content": error},
            "403": {"description": "The token may not read this endpoint", "content": error},
            "404": {"description": "No such endpoint", "content": error},
            "408": {"description": "The query ran past the time limit", "content": error},
            "429": {"description": "Too many requests", "content": error},
        }
