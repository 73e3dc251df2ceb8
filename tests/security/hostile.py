"""The machinery of the hostile-input suite: cases as data, the world they run against, and the
snapshot of everything a refused request must leave as it was.

A `Case` is one HTTP request (made with the token named by its `token` label) that must be refused:
a 4xx whose JSON `{"error": …}` contains `error`. An `Inert` case is a request that may legitimately
succeed (an injection that ends up as a literal, a row filter that holds): it must answer 200 with
exactly the rows `expect`, show none of the other tenants' or hidden values, and change nothing.

Texts in cases may hold placeholders `%NAME%` (the physical names of the world, see `World.names`),
so that a case can name another workspace's database or tables without knowing them in advance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

# What no answer may ever show: B's secret and the row of A's private data source (B's physical
# names are checked too, unless the case itself wrote them).
NEVER_SHOWN = ("TOPSECRET_B", "A_PRIVATE_ROW")


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int | tuple[int, ...]
    error: str  # a substring of the error message that says what was wrong (case-insensitive)
    token: str = "admin_a"
    params: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None  # form fields
    json: Any = None
    content: bytes | str | None = None
    headers: Mapping[str, str] | None = None
    files: Mapping[str, Any] | None = None
    slow: bool = False

    @property
    def statuses(self) -> tuple[int, ...]:
        return self.status if isinstance(self.status, tuple) else (self.status,)


@dataclass(frozen=True)
class Inert:
    """A request that may answer 200, but only with `expect` as its `data` rows."""

    id: str
    method: str
    path: str
    expect: list[Any]  # the `data` rows, or the `pick` column of them
    token: str = "admin_a"
    params: Mapping[str, Any] | None = None
    json: Any = None
    pick: str | None = None  # compare only this column of the rows
    never: tuple[str, ...] = NEVER_SHOWN


def params(cases: list, *, xfail: Mapping[str, str] | None = None) -> list:
    """pytest params for a family, with ids; `xfail` maps case ids to the reason they fail today."""
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate case ids: {duplicates}"
    out = []
    for c in cases:
        marks = []
        if c.id in (xfail or {}):
            marks.append(pytest.mark.xfail(reason=xfail[c.id], strict=True))
        if getattr(c, "slow", False):
            marks.append(pytest.mark.slow)
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


# -- the world -------------------------------------------------------------------------------------


@dataclass
class World:
    """Workspaces A (the attacker's) and B (the victim), their tokens by label, and physical names."""

    platform: Any
    app: Any
    a: Any
    b: Any
    tokens: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    canaries: tuple[Path, ...] = ()
    _clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, label: str) -> TestClient:
        if label not in self._clients:
            headers = {"Authorization": f"Bearer {self.tokens[label]}"} if label != "anonymous" else {}
            self._clients[label] = TestClient(self.app, headers=headers)
        return self._clients[label]

    def fill(self, value: Any) -> Any:
        """`value` with every `%NAME%` placeholder replaced, in strings, bytes, lists and dicts."""
        if isinstance(value, str):
            for key, name in self.names.items():
                value = value.replace(f"%{key}%", name)
            return value
        if isinstance(value, bytes):
            return self.fill(value.decode("latin-1")).encode("latin-1") if b"%" in value else value
        if isinstance(value, Mapping):
            return {self.fill(k): self.fill(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.fill(v) for v in value)
        return value

    def send(self, case: Case | Inert):
        c = self.fill_case(case)
        kwargs: dict[str, Any] = {"params": c.params}
        for key in ("data", "json", "content", "headers", "files"):
            value = getattr(c, key, None)
            if value is not None:
                kwargs[key] = value
        return self.client(case.token).request(c.method, c.path, **kwargs)

    def fill_case(self, case):
        return replace(case, **{k: self.fill(getattr(case, k)) for k in _FILLED if hasattr(case, k)})

    # -- what must not change ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        catalog, engine = self.platform.catalog, self.platform.engine
        out: dict[str, Any] = {"workspaces": sorted(w.name for w in catalog.workspaces())}
        counts = []
        for label, ws in (("A", self.a), ("B", self.b)):
            sources = catalog.datasources(ws.id)
            pipes = catalog.pipes(ws.id)
            out[label] = {
                "datasources": sorted(
                    (name, d.id, orjson.dumps(d.columns).decode(), orjson.dumps(d.engine).decode())
                    for name, d in sources.items()
                ),
                "pipes": sorted(
                    (name, p.id, p.endpoint_node_id, tuple((n.name, n.type, n.sql) for n in p.nodes))
                    for name, p in pipes.items()
                ),
                "tokens": sorted(
                    (t.name, orjson.dumps(t.scopes, option=orjson.OPT_SORT_KEYS).decode())
                    for t in catalog.tokens(ws.id)
                ),
            }
            for d in sources.values():
                for suffix in ("", "_quarantine"):
                    table = f"{ws.database}.{d.id}{suffix}"
                    counts.append(f"SELECT '{label}.{d.name}{suffix}', count() FROM {table}")
        out["rows"] = engine.execute(f"SELECT * FROM ({' UNION ALL '.join(counts)}) ORDER BY 1").data.decode()
        # Every database, and every table outside other tests' workspaces (whose background copies
        # may come and go while this suite runs).
        mine = (self.a.database, self.b.database)
        out["engine"] = engine.execute(
            "SELECT * FROM (SELECT 'db', name FROM system.databases UNION ALL SELECT database, name "
            "FROM system.tables WHERE database NOT IN ('system', 'information_schema', 'INFORMATION_SCHEMA') "
            f"AND (database NOT LIKE 'w\\_%' OR database IN ('{mine[0]}', '{mine[1]}'))) ORDER BY 1, 2"
        ).data.decode()
        out["files"] = _listing(self.platform.config.data_path, engine_dir=Path(engine.path))
        out["canaries"] = [str(p) for p in self.canaries if p.exists()]
        return out

    def tidy(self, before: dict[str, Any]) -> None:
        """After a case that changed things (and fails for it): drop the pipes and data sources it
        created, so that the cases after it meet the same world."""
        platform = self.platform
        for label, ws, token in (("A", self.a, "admin_a"), ("B", self.b, "admin_b")):
            principal = platform.tokens.authenticate(self.tokens[token])
            pipes = {row[0] for row in before[label]["pipes"]}
            for name, pipe in list(platform.catalog.pipes(ws.id).items()):
                if name not in pipes:
                    platform.pipes.drop(principal, pipe)
            sources = {row[0] for row in before[label]["datasources"]}
            for name, rec in list(platform.catalog.datasources(ws.id).items()):
                if name not in sources:
                    platform.datasources.drop(principal, rec, force=True)


_FILLED = ("path", "params", "data", "json", "content", "headers", "files", "expect")

# SQLite's own side files come and go; the events log rotates its segments on its own schedule.
_CHURN = ("catalog.db-shm", "catalog.db-wal", "catalog.db-journal")


def _listing(data_dir: Path, *, engine_dir: Path) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(data_dir):
        rel = Path(root).relative_to(data_dir)
        for name in files:
            path = str(rel / name)
            if name in _CHURN or (rel.parts[:1] == ("wal",) and name.endswith(".wal")):
                continue
            found.append(path)
    # The engine keeps its parts, metadata and temporary files to itself; files written by a query
    # (user_files, user_scripts, or anything new at the top) would show here.
    for entry in sorted(os.listdir(engine_dir)):
        found.append(f"<engine>/{entry}")
        if entry in ("user_files", "user_scripts"):
            for root, _dirs, files in os.walk(engine_dir / entry):
                found.extend(f"<engine>/{Path(root, f).relative_to(engine_dir)}" for f in files)
    return sorted(found)


# -- checks ----------------------------------------------------------------------------------------


def error_of(res) -> str:
    assert res.headers.get("content-type", "").startswith("application/json"), (
        f"{res.status_code} answer is not JSON: {res.text[:300]}"
    )
    body = res.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip(), body
    return body["error"]


def _run(world: World, case: Case | Inert):
    before = world.snapshot()
    res = world.send(case)
    after = world.snapshot()
    if after != before:
        world.tidy(before)
    return res, before, after


def check_refused(world: World, case: Case) -> None:
    res, before, after = _run(world, case)
    assert 400 <= res.status_code < 500, f"{case.id}: expected a 4xx, got {res.status_code}: {res.text[:500]}"
    message = error_of(res)
    assert res.status_code in case.statuses, f"{case.id}: {res.status_code} {message}"
    wanted = world.fill(case.error)
    assert wanted.lower() in message.lower(), f"{case.id}: {wanted!r} not in {message!r}"
    asked = repr(world.fill_case(case))
    for secret in (*NEVER_SHOWN, world.names["B_DB"], world.names["B_SECRET"]):
        if secret not in asked:  # an error may quote what the caller wrote, nothing else of B's
            assert secret not in res.text, f"{case.id}: the answer shows {secret!r}"
    assert_unchanged(before, after)


def check_inert(world: World, case: Inert) -> None:
    res, before, after = _run(world, case)
    assert res.status_code == 200, f"{case.id}: {res.status_code} {res.text[:500]}"
    for secret in case.never:
        assert secret not in res.text, f"{case.id}: the answer shows {secret!r}"
    data = res.json()["data"]
    if case.pick:
        data = [row[case.pick] for row in data]
    assert data == world.fill(case.expect), f"{case.id}: {data}"
    assert_unchanged(before, after)


def assert_unchanged(before: dict, after: dict) -> None:
    for key in before:
        if before[key] != after[key]:
            old, new = _lines(before[key]), _lines(after[key])
            raise AssertionError(f"'{key}' changed: gone {sorted(old - new)}, new {sorted(new - old)}")


def _lines(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(value.splitlines())
    if isinstance(value, dict):
        return {f"{k}: {v}" for k, v in value.items()}
    return {repr(v) for v in value}
