"""The function allow-list against the real engine: an engine upgrade that adds, removes or changes a
function fails here until allowed_functions.txt is regenerated (and the new names reviewed):

    .venv/bin/python -m tody.sql.functions
"""

from __future__ import annotations

import difflib

import pytest

from tody.engine.base import EngineError
from tody.sql import functions as fn
from tody.sql.dialect import STRUCTURAL_WORDS

REGENERATE = "review the new names, deny what is unsafe in tody/sql/functions.py, then run python -m tody.sql.functions"


def _names(engine, sql: str) -> list[str]:
    return [line.split("\t")[0] for line in engine.execute(sql, "TabSeparated").data.decode().splitlines()]


def test_allowed_functions_file_matches_the_engine(engine):
    expected = fn.render_catalog(engine)
    current = fn.ALLOWED_FILE.read_text(encoding="utf-8")
    if current != expected:
        diff = "\n".join(
            difflib.unified_diff(
                current.splitlines(), expected.splitlines(), "file", "engine", lineterm="", n=0
            )
        )
        pytest.fail(f"allowed_functions.txt does not match the engine; {REGENERATE}\n{diff[:4000]}")


def test_every_engine_function_is_allowed_or_denied(engine):
    cat = fn.catalog()
    unknown = [n for n in _names(engine, fn.FUNCTIONS_QUERY) if n not in cat.exact]
    assert not unknown, f"functions neither allowed nor denied: {unknown}; {REGENERATE}"
    for name, kind in cat.exact.items():
        assert (fn.function_refusal(name) is None) == (kind != "denied"), name


def test_explicit_denials_name_real_functions(engine):
    names = set(_names(engine, fn.FUNCTIONS_QUERY))
    assert not set(fn.DENIED) - names, "typo in DENIED?"


def test_every_table_function_is_reviewed(engine):
    names = set(_names(engine, fn.TABLE_FUNCTIONS_QUERY))
    reviewed = fn.ALLOWED_TABLE_FUNCTIONS | fn.DENIED_TABLE_FUNCTIONS_REVIEWED
    assert not names - reviewed, f"new table functions to review: {sorted(names - reviewed)}"
    assert names >= fn.ALLOWED_TABLE_FUNCTIONS
    assert not fn.ALLOWED_TABLE_FUNCTIONS & fn.DENIED_TABLE_FUNCTIONS_REVIEWED


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM numbers(2)",
        "SELECT * FROM numbers_mt(2)",
        "SELECT * FROM generate_series(1, 2)",
        "SELECT * FROM generateSeries(1, 2)",
        "SELECT * FROM primes(2)",
        "SELECT * FROM null('a UInt8')",
        "SELECT * FROM values('a UInt8', 1)",
    ],
)
def test_allowed_table_functions_run_on_the_query_path(engine, sql):
    engine.query(sql, "TabSeparated")


def test_parenless_calls_of_denied_functions_are_known(engine):
    """ClickHouse calls a few functions from a bare identifier (`SELECT currentUser`); every denied one
    that does must be in PARENLESS_DENIED so that the gate refuses the bare identifier too."""
    cat = fn.catalog()
    leaked = []
    for name, kind in cat.exact.items():
        if kind != "denied" or name.startswith(("sleep", "_")):
            continue
        variants = {name, name.upper(), name.lower()} if name.lower() in cat.folded else {name}
        for variant in variants:
            try:
                engine.query(f"SELECT `{variant}`", "TabSeparated")
            except EngineError:
                continue
            if variant.lower() not in fn.PARENLESS_DENIED:
                leaked.append(variant)
    assert not leaked, f"add to PARENLESS_DENIED: {leaked}"


def test_names_the_scan_lets_through_are_not_denied_functions():
    cat = fn.catalog()
    denied_exact = {n for n, k in cat.exact.items() if k == "denied"}
    denied_folded = {n.lower() for n in denied_exact if n.lower() in cat.folded}
    for name in sorted(cat.types_exact | cat.types_folded | {w.lower() for w in STRUCTURAL_WORDS}):
        assert name not in denied_exact and name.lower() not in denied_folded, name
    for name in fn.ALLOWED_TABLE_FUNCTIONS:
        assert name not in denied_exact, name


@pytest.mark.parametrize(
    "name",
    [
        "sum", "SUM", "count", "COUNT", "sumIf", "countIf", "uniqState", "uniqMerge", "uniqMergeState",
        "countMerge", "quantilesTDigestMerge", "quantilesTDigestMergeIf", "avgOrNull", "avgOrDefault",
        "groupArrayResample", "sumArray", "sumMap", "sumForEach", "uniqDistinct", "argMaxIf", "sumSimpleState",
        "anyArgMax", "medianIf", "arrayMap", "toStartOfDay", "if", "multiIf", "lower", "LOWER", "version",
        "throwIf", "evalMLMethod", "icebergHash", "initializeAggregation", "timeSeriesRange", "chdb",
    ],
)  # fmt: skip
def test_allowed_names(name):
    assert fn.function_refusal(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "file", "FILE", "joinGet", "joinGetOrNull", "dictGet", "dictGetString", "dictHas", "dictIsIn",
        "dictGetHierarchy", "hasColumnInTable", "getServerSetting", "getSetting", "getSettingOrDefault",
        "currentDatabase", "DATABASE", "database", "currentUser", "user", "USER", "currentRoles", "hostName",
        "hostname", "FQDN", "fqdn", "filesystemAvailable", "serverUUID", "uptime", "addressToLine",
        "addressToSymbol", "demangle", "sleep", "sleepEachRow", "generateRandomStructure", "globalVariable",
        "getMacro", "getClientHTTPHeader", "getOSKernelVersion", "displayName", "buildId", "connectionId",
        "transactionID", "in", "notIn", "globalIn", "globalNotInIgnoreSet", "aiGenerate", "AIGenerate",
        "fileIf", "aggThrowIf", "flameGraph", "timeSeriesStoreTags", "timeSeriesGroupToTags", "generateSerialID",
        "__getScalar", "_CAST", "regionToCountry", "naiveBayesClassifier", "logTrace", "nosuchfunction",
    ],
)  # fmt: skip
def test_denied_names(name):
    refusal = fn.function_refusal(name)
    assert refusal and f"'{name}'" in refusal


def test_table_function_refusals_explain_why():
    assert fn.table_function_refusal("numbers") is None
    assert "files" in fn.table_function_refusal("file")
    assert "remote" in fn.table_function_refusal("s3Cluster")
    assert "server process" in fn.table_function_refusal("Python")
    assert fn.table_function_refusal("somethingNew") == "table function 'somethingNew' is not allowed"
