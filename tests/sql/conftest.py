"""Fixtures for the SQL gate tests: real tables on the shared engine and a dictionary resolver.

`gate_db` is one workspace-like database per module with `events`, `users` and `ids`; `secret` is
another tenant's database (`other`) holding a table and a dictionary that attacks try to reach.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tody.sql.gate import TableBinding

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sql"

SCHEMA = [
    """CREATE TABLE {db}.events (
        timestamp DateTime('UTC'), a UInt32, user_id UInt32, event LowCardinality(String),
        amount Float64, tags Array(String), props Map(String, String), pair Tuple(x UInt8, y String)
    ) ENGINE = MergeTree ORDER BY (user_id, intHash32(a)) SAMPLE BY intHash32(a)""",
    """INSERT INTO {db}.events SELECT toDateTime('2024-01-01 00:00:00', 'UTC') + number * 3600, number,
        number % 4, ['view', 'click', 'buy'][number % 3 + 1], number * 1.5,
        arrayMap(i -> concat('t', toString(i)), range(number % 3)), map('k', toString(number)),
        (number % 7, toString(number)) FROM numbers(20)""",
    """CREATE TABLE {db}.users (id UInt32, name String, country String, version UInt32)
        ENGINE = ReplacingMergeTree(version) ORDER BY id""",
    "INSERT INTO {db}.users VALUES (0, 'ana', 'ES', 1), (1, 'bo', 'FR', 1), (2, 'cy', 'US', 1), (3, 'di', 'ES', 1)",
    "INSERT INTO {db}.users VALUES (1, 'bob', 'FR', 2)",
    "CREATE TABLE {db}.ids (id UInt32) ENGINE = MergeTree ORDER BY id",
    "INSERT INTO {db}.ids VALUES (0), (1)",
]

SECRET = [
    "CREATE DATABASE IF NOT EXISTS other ENGINE = Atomic",
    "CREATE TABLE IF NOT EXISTS other.secret (s String) ENGINE = MergeTree ORDER BY s",
    "CREATE TABLE IF NOT EXISTS other.kv (k UInt64, s String) ENGINE = MergeTree ORDER BY k",
    """CREATE DICTIONARY IF NOT EXISTS other.d (k UInt64, s String) PRIMARY KEY k
        SOURCE(CLICKHOUSE(DB 'other' TABLE 'kv')) LAYOUT(FLAT()) LIFETIME(0)""",
]


@dataclass
class DictResolver:
    """Logical (qualifier, name) -> TableBinding; records every lookup."""

    bindings: dict[tuple[str | None, str], TableBinding]
    calls: list[tuple[str | None, str]] = field(default_factory=list)

    def resolve(self, database: str | None, name: str) -> TableBinding | None:
        self.calls.append((database, name))
        return self.bindings.get((database, name))


@pytest.fixture(scope="session")
def secret(engine):
    """Another tenant's data: other.secret ('X'), other.kv and the dictionary other.d (1 -> 'X')."""
    for sql in SECRET:
        engine.execute(sql)
    if engine.execute("SELECT count() FROM other.secret").data.strip() == b"0":
        engine.execute("INSERT INTO other.secret VALUES ('X')")
        engine.execute("INSERT INTO other.kv VALUES (1, 'X')")
    return "other"


@pytest.fixture(scope="module")
def gate_db(engine):
    name = "g_" + uuid.uuid4().hex[:12]
    engine.execute(f"CREATE DATABASE {name} ENGINE = Atomic")
    for sql in SCHEMA:
        engine.execute(sql.format(db=name))
    yield name
    engine.execute(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def resolver(gate_db):
    return DictResolver({(None, t): TableBinding(gate_db, t) for t in ("events", "users", "ids")})


def load_cases(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def logical(sql: str) -> str:
    """The query as a user writes it: `{db}.events` -> `events`."""
    return sql.replace("{db}.", "")


def physical(sql: str, db: str) -> str:
    """The same query against the physical tables."""
    return sql.replace("{db}.", f"{db}.")


def rows(engine, sql: str, fmt: str = "TabSeparated") -> bytes:
    return engine.query(sql, fmt).data
