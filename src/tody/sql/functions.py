"""Which ClickHouse functions untrusted SQL may call.

The allow-list is data (`allowed_functions.txt`), derived from the engine's own `system.functions`
minus the denials below, so that an engine upgrade that adds a function is noticed: the test
`tests/sql/test_gate_functions.py` fails until the new name is allowed (by regenerating the file) or denied
(by adding it here). Regenerate after reviewing new names with:

    .venv/bin/python -m tody.sql.functions            # rewrites src/tody/sql/allowed_functions.txt
    .venv/bin/python -m tody.sql.functions --check    # exit 1 when the file is stale

Name resolution follows ClickHouse: an exact match first, then a case-insensitive match among the
functions the engine marks case-insensitive; an aggregate function followed by a chain of combinator
suffixes (`sumIf`, `uniqMergeState`, `quantilesTDigestMergeIf`) resolves to its base aggregate.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

ALLOWED_FILE = Path(__file__).with_name("allowed_functions.txt")

_FILES = "reads or writes files on the server"
_TABLES = "reads tables or dictionaries named in its arguments, which bypasses table access checks"
_SERVER = "exposes the server's configuration or state"
_SESSION = "exposes the session, user or connection"
_INTROSPECTION = "introspects the server process"
_SLEEP = "holds a query thread on purpose"
_NETWORK = "calls external services"
_INTERNAL = "is internal to the engine"
_DEBUG = "is a testing and debugging tool"
_IN = "use the IN operator instead"
_SHARED = "uses state shared by every query of the server"
_FORMATS = "serializes through arbitrary formats, some of which read schema files on the server"
_GEOBASE = "reads the server's embedded geobase files"
_MODELS = "uses models from the server's configuration"

# name (as spelled in system.functions) -> why it is refused. Aliases of these (`alias_to`) are refused too.
DENIED: dict[str, str] = {
    "file": _FILES,
    "filesystemAvailable": _SERVER,
    "filesystemCapacity": _SERVER,
    "filesystemUnreserved": _SERVER,
    "joinGet": _TABLES,
    "joinGetOrNull": _TABLES,
    "hasColumnInTable": _TABLES,
    "getMaxTableNameLengthForDatabase": _TABLES,
    "getServerSetting": _SERVER,
    "getSetting": _SERVER,
    "getSettingOrDefault": _SERVER,
    "getMergeTreeSetting": _SERVER,
    "getMacro": _SERVER,
    "globalVariable": _SERVER,
    "getServerPort": _SERVER,
    "tcpPort": _SERVER,
    "serverUUID": _SERVER,
    "uptime": _SERVER,
    "buildId": _SERVER,
    "displayName": _SERVER,
    "getOSKernelVersion": _SERVER,
    "hostName": _SERVER,
    "FQDN": _SERVER,
    "shardNum": _SERVER,
    "shardCount": _SERVER,
    "zookeeperSessionUptime": _SERVER,
    "showCertificate": _SERVER,
    "tid": _SERVER,
    "transactionID": _SERVER,
    "transactionLatestSnapshot": _SERVER,
    "transactionOldestSnapshot": _SERVER,
    "logTrace": "writes to the server log",
    "currentDatabase": _SESSION,
    "currentSchemas": _SESSION,
    "currentUser": _SESSION,
    "authenticatedUser": _SESSION,
    "currentRoles": _SESSION,
    "enabledRoles": _SESSION,
    "defaultRoles": _SESSION,
    "currentProfiles": _SESSION,
    "enabledProfiles": _SESSION,
    "defaultProfiles": _SESSION,
    "currentHandler": _SESSION,
    "currentRequestURL": _SESSION,
    "getClientHTTPHeader": _SESSION,
    "connectionId": _SESSION,
    "queryID": _SESSION,
    "currentQueryID": _SESSION,
    "initialQueryID": _SESSION,
    "initialQueryStartTime": _SESSION,
    "pgGetUserById": _SESSION,
    "pgTableIsVisible": _SESSION,
    "addressToLine": _INTROSPECTION,
    "addressToLineWithInlines": _INTROSPECTION,
    "addressToSymbol": _INTROSPECTION,
    "demangle": _INTROSPECTION,
    "flameGraph": _INTROSPECTION,
    "sleep": _SLEEP,
    "sleepEachRow": _SLEEP,
    "generateSerialID": _SHARED,
    "generateRandomStructure": _DEBUG,
    "fuzzQuery": _DEBUG,
    "hasThreadFuzzer": _DEBUG,
    "aggThrow": _DEBUG,
    "formatRow": _FORMATS,
    "formatRowNoNewline": _FORMATS,
    "groupFormat": _FORMATS,
    "regionHierarchy": _GEOBASE,
    "regionIn": _GEOBASE,
}

# Families denied by prefix or suffix (name -> reason) so that new members are denied by default.
DENIED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("_", _INTERNAL),
    ("dict", _TABLES),
    ("regionTo", _GEOBASE),
    ("naiveBayes", _MODELS),
    ("ai", _NETWORK),
    ("AI", _NETWORK),
)
# The function forms of IN read a table named by a bare identifier (`in(x, other_db.t)`).
DENIED_IN_FUNCTIONS = frozenset(
    name + suffix
    for name in (
        "in",
        "notIn",
        "nullIn",
        "notNullIn",
        "globalIn",
        "globalNotIn",
        "globalNullIn",
        "globalNotNullIn",
    )
    for suffix in ("", "IgnoreSet")
)
# Scalar time-series functions share a process-wide registry of tag groups; only these two are pure.
_TIME_SERIES_PURE = frozenset({"timeSeriesFromGrid", "timeSeriesRange"})

# Functions that run without parentheses when an identifier is not a column (`SELECT currentUser`).
# Verified against the engine by tests/sql/test_gate_functions.py; compared case-insensitively.
PARENLESS_DENIED = frozenset(
    {
        "currentdatabase",
        "current_database",
        "database",
        "schema",
        "currentuser",
        "current_user",
        "session_user",
        "user",
        "currenthandler",
        "currentrequesturl",
    }
)

# Table functions: an explicit allow-list; every other table function is refused.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "numbers",
        "numbers_mt",
        "generate_series",
        "generateSeries",
        "primes",
        "null",
        "values",
    }
)
_TF_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("python",), "reads objects of the server process"),
    (("file", "fileCluster", "filesystem", "sqlite", "arrowstream", "executable"), _FILES),
    (("url", "urlCluster", "s3", "s3Cluster", "gcs", "cosn", "oss", "azure", "hdfs", "iceberg", "deltaLake",
      "hudi", "paimon", "mysql", "postgresql", "mongodb", "redis", "jdbc", "odbc", "remote", "cluster",
      "bigquery", "ytsaurus", "prometheus"), "reads remote storage or other servers"),
    (("merge", "dictionary", "loop", "view", "mergeTree", "timeSeries"), _TABLES),
    (("input", "format", "fuzz", "generateRandom", "SQLStandardValues", "eval", "zeros"), "is not available to queries"),
)  # fmt: skip

# Reviewed: every table function of the engine is either allowed above or refused with one of these.
DENIED_TABLE_FUNCTIONS_REVIEWED = frozenset(
    {
        "SQLStandardValues", "arrowstream", "azureBlobStorage", "azureBlobStorageCluster", "bigquery",
        "cluster", "clusterAllReplicas", "cosn", "deltaLake", "deltaLakeAzure", "deltaLakeAzureCluster",
        "deltaLakeCluster", "deltaLakeLocal", "deltaLakeS3", "deltaLakeS3Cluster", "dictionary", "eval",
        "executable", "file", "fileCluster", "filesystem", "format", "fuzzJSON", "fuzzQuery", "gcs",
        "generateRandom", "hdfs", "hdfsCluster", "hudi", "hudiCluster", "iceberg", "icebergAzure",
        "icebergAzureCluster", "icebergCluster", "icebergHDFS", "icebergHDFSCluster", "icebergLocal",
        "icebergLocalCluster", "icebergS3", "icebergS3Cluster", "input", "jdbc", "loop", "merge",
        "mergeTreeAnalyzeIndexes", "mergeTreeAnalyzeIndexesUUID", "mergeTreeCodecBlockCounts",
        "mergeTreeIndex", "mergeTreeProjection", "mergeTreeTextIndex", "mongodb", "mysql", "odbc", "oss",
        "paimon", "paimonAzure", "paimonAzureCluster", "paimonCluster", "paimonHDFS", "paimonHDFSCluster",
        "paimonLocal", "paimonS3", "paimonS3Cluster", "postgresql", "prometheusQuery",
        "prometheusQueryRange", "python", "redis", "remote", "remoteSecure", "s3", "s3Cluster", "sqlite",
        "timeSeriesData", "timeSeriesMetricFamilies", "timeSeriesMetrics", "timeSeriesSamples",
        "timeSeriesSelector", "timeSeriesTags", "url", "urlCluster", "view", "viewExplain",
        "viewIfPermitted", "ytsaurus", "zeros", "zeros_mt",
    }
)  # fmt: skip

# Functions whose first argument names an aggregate function in a string literal.
AGGREGATE_NAME_ARGUMENT = frozenset({"arrayReduce", "arrayReduceInRanges", "initializeAggregation"})


def denied_reason(name: str, is_aggregate: bool = False) -> str | None:
    """Why `name` (as spelled in system.functions) is refused, or None when it is not on a deny rule."""
    if name in DENIED:
        return DENIED[name]
    if name in DENIED_IN_FUNCTIONS:
        return _IN
    for prefix, reason in DENIED_PREFIXES:
        if name.startswith(prefix) and (prefix not in ("ai", "AI") or name[2:3].isupper()):
            return reason
    if name.startswith("timeSeries") and not is_aggregate and name not in _TIME_SERIES_PURE:
        return _SHARED
    return None


# -- the allow-list file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    exact: dict[str, str]  # name -> kind ("function" | "aggregate" | "denied")
    folded: dict[str, str]  # lower(name) -> kind, for case-insensitive functions
    targets: dict[str, str]  # denied alias -> the function it names
    combinators: tuple[str, ...]  # longest first
    types_exact: frozenset[str]
    types_folded: frozenset[str]
    engine_version: str


def parse_catalog(text: str) -> Catalog:
    exact: dict[str, str] = {}
    folded: dict[str, str] = {}
    targets: dict[str, str] = {}
    combinators: list[str] = []
    types_exact: set[str] = set()
    types_folded: set[str] = set()
    version = ""
    for line in text.splitlines():
        if line.startswith("# engine:"):
            version = line.split(":", 1)[1].strip()
        if not line or line.startswith("#"):
            continue
        name, kind, case, target = line.split("\t")
        if kind == "combinator":
            combinators.append(name)
        elif kind == "type":
            (types_folded.add(name.lower()) if case == "ci" else types_exact.add(name))
        else:
            exact[name] = kind
            if case == "ci":
                folded[name.lower()] = kind
            if target != "-":
                targets[name] = target
                targets.setdefault(name.lower(), target)
    combinators.sort(key=len, reverse=True)
    return Catalog(
        exact, folded, targets, tuple(combinators), frozenset(types_exact), frozenset(types_folded), version
    )


@functools.cache
def catalog() -> Catalog:
    return parse_catalog(ALLOWED_FILE.read_text(encoding="utf-8"))


def _lookup(name: str) -> str | None:
    cat = catalog()
    return cat.exact.get(name) or cat.folded.get(name.lower())


def _canonical(name: str) -> str:
    """The system.functions spelling of `name` (resolving case-insensitive aliases), else `name`."""
    cat = catalog()
    if name in cat.exact:
        return name
    lowered = name.lower()
    if lowered in cat.folded:
        for candidate in cat.exact:
            if candidate.lower() == lowered:
                return candidate
    return name


def _aggregate_base(name: str, depth: int = 0) -> bool:
    """True when `name` is an allowed aggregate, possibly followed by combinator suffixes."""
    if _lookup(name) == "aggregate":
        return True
    if depth >= 6:
        return False
    return any(
        name.endswith(suffix) and len(name) > len(suffix) and _aggregate_base(name[: -len(suffix)], depth + 1)
        for suffix in catalog().combinators
    )


@functools.lru_cache(maxsize=4096)
def function_refusal(name: str) -> str | None:
    """None when untrusted SQL may call `name`; otherwise the user-facing reason."""
    kind = _lookup(name)
    if kind in ("function", "aggregate") or (kind is None and _aggregate_base(name)):
        return None
    return f"function '{name}' is not allowed ({_reason_for(name)})"


@functools.lru_cache(maxsize=1024)
def aggregate_refusal(name: str) -> str | None:
    """None when `name` is an allowed aggregate function (with combinators)."""
    if _aggregate_base(name):
        return None
    return f"'{name}' is not an allowed aggregate function"


def _reason_for(name: str) -> str:
    canonical = _canonical(name)
    target = catalog().targets.get(canonical) or catalog().targets.get(name.lower())
    for candidate in (canonical, target):
        reason = denied_reason(candidate) if candidate else None
        if reason:
            return reason
    lowered = name.lower()
    for denied, why in DENIED.items():
        if denied.lower() == lowered:
            return why
    return "unknown or not available to queries"


def is_type_name(name: str) -> bool:
    cat = catalog()
    return name in cat.types_exact or name.lower() in cat.types_folded


def table_function_refusal(name: str) -> str | None:
    if name in ALLOWED_TABLE_FUNCTIONS:
        return None
    for prefixes, reason in _TF_REASONS:
        if name.startswith(prefixes) or name.lower().startswith(tuple(p.lower() for p in prefixes)):
            return f"table function '{name}' is not allowed ({reason})"
    return f"table function '{name}' is not allowed"


def parenless_refusal(name: str) -> str | None:
    if name.lower() in PARENLESS_DENIED:
        return (
            f"'{name}' is the name of a function that is not allowed ({_reason_for(name)}); "
            "if it is a column, qualify it with its table name, e.g. t.column"
        )
    return None


# -- regeneration -------------------------------------------------------------------------------------

FUNCTIONS_QUERY = "SELECT name, is_aggregate, case_insensitive, alias_to FROM system.functions ORDER BY name"
COMBINATORS_QUERY = (
    "SELECT name FROM system.aggregate_function_combinators WHERE NOT is_internal ORDER BY name"
)
TYPES_QUERY = "SELECT name, case_insensitive FROM system.data_type_families ORDER BY name"
TABLE_FUNCTIONS_QUERY = "SELECT name FROM system.table_functions ORDER BY name"


def _rows(engine, sql: str) -> list[list[str]]:
    data = engine.execute(sql, "TabSeparated").data.decode()
    return [line.split("\t") for line in data.splitlines() if line]


def render_catalog(engine) -> str:
    """The text of allowed_functions.txt for this engine (deterministic)."""
    version = _rows(engine, "SELECT version()")[0][0]
    rows = _rows(engine, FUNCTIONS_QUERY)
    aggregate = {name: flag == "1" for name, flag, _ci, _alias in rows}
    lines = [
        "# Functions untrusted SQL may call: every row of system.functions, marked allowed or denied.",
        "# Generated by `python -m tody.sql.functions`; do not edit by hand.",
        f"# engine: {version}",
        "# name\tkind (function, aggregate, denied, combinator, type)\tcase\talias_to",
    ]
    for name, is_agg, ci, alias_to in rows:
        target = alias_to or name
        if denied_reason(name, is_agg == "1") or denied_reason(target, aggregate.get(target, False)):
            kind = "denied"
        else:
            kind = "aggregate" if is_agg == "1" else "function"
        lines.append(f"{name}\t{kind}\t{'ci' if ci == '1' else 'cs'}\t{alias_to or '-'}")
    for (name,) in _rows(engine, COMBINATORS_QUERY):
        lines.append(f"{name}\tcombinator\tcs\t-")
    for name, ci in _rows(engine, TYPES_QUERY):
        if " " not in name:
            lines.append(f"{name}\ttype\t{'ci' if ci == '1' else 'cs'}\t-")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from tody.engine.chdb import ChdbEngine

    args = sys.argv[1:] if argv is None else argv
    with tempfile.TemporaryDirectory() as path:
        engine = ChdbEngine(path, pool_size=1, admin_pool_size=1)
        try:
            text = render_catalog(engine)
        finally:
            engine.close()
    if "--check" in args:
        current = ALLOWED_FILE.read_text(encoding="utf-8") if ALLOWED_FILE.exists() else ""
        if current != text:
            print(f"{ALLOWED_FILE} is stale; run python -m tody.sql.functions", file=sys.stderr)
            return 1
        return 0
    ALLOWED_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {ALLOWED_FILE} ({text.count(chr(10)) - 4} entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
