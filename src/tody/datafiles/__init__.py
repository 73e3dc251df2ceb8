"""Datafiles: `.datasource` parse ↔ render (round-trip exact), the column-list syntax shared with the
API's `schema` parameter, and the ClickHouse type grammar."""

from tody.datafiles.datasource import (
    DatafileError,
    DatasourceFile,
    datasource_from_params,
    parse_datasource,
    render_datasource,
)
from tody.datafiles.schema import parse_indexes, parse_schema, render_column, render_schema
from tody.datafiles.types import normalize_type

__all__ = [
    "DatafileError",
    "DatasourceFile",
    "datasource_from_params",
    "normalize_type",
    "parse_datasource",
    "parse_indexes",
    "parse_schema",
    "render_column",
    "render_datasource",
    "render_schema",
]
