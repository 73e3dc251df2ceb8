"""Shared fixtures. One chDB engine per test process (chDB allows one data path per process);
tests isolate themselves by working in their own workspace database."""

from __future__ import annotations

import uuid

import pytest

from tody.engine.base import QueryLimits
from tody.engine.chdb import ChdbEngine


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    eng = ChdbEngine(
        tmp_path_factory.mktemp("engine"),
        limits=QueryLimits(max_execution_time=5, max_rows_to_read=1_000_000_000),
        pool_size=2,
    )
    yield eng
    eng.close()


@pytest.fixture
def database(engine):
    """A fresh database on the shared engine, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    engine.execute(f"CREATE DATABASE {name} ENGINE = Atomic")
    yield name
    engine.execute(f"DROP DATABASE IF EXISTS {name} SYNC")
