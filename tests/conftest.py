"""Shared fixtures. One platform (catalog + chDB engine on a temp data directory) per test process,
because chDB allows one data path per process; each test works in a workspace of its own."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tody.settings import Config

FIXTURES = Path(__file__).parent / "fixtures"


CONFIG = dict(max_execution_time=3.0, max_rows_to_read=1_000_000_000, query_pool_size=2)


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    from tody.engine.chdb import ChdbEngine

    eng = ChdbEngine(tmp_path_factory.mktemp("engine"), limits=Config(**CONFIG).query_limits(), pool_size=2)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def platform(tmp_path_factory, engine):
    from tody.services.platform import Platform

    config = Config.load(environ={}, data_dir=str(tmp_path_factory.mktemp("tody-data")), **CONFIG)
    p = Platform.open(config, engine=engine)
    yield p
    p.catalog.close()
    p.lock.release()


@pytest.fixture
def database(engine):
    """A fresh database on the shared engine, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    engine.execute(f"CREATE DATABASE {name} ENGINE = Atomic")
    yield name
    engine.execute(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture(scope="session")
def app(platform):
    from tody.server.app import create_app

    return create_app(platform)


def _new_workspace(platform):
    org = platform.catalog.organizations()[0]
    return platform.workspaces.create(org.id, "ws_" + uuid.uuid4().hex[:10])


@pytest.fixture
def _workspace_and_token(platform):
    return _new_workspace(platform)


@pytest.fixture
def workspace(_workspace_and_token):
    return _workspace_and_token[0]


@pytest.fixture
def workspace_token(_workspace_and_token):
    return _workspace_and_token[1]


@pytest.fixture
def client(app, workspace_token):
    with TestClient(app, headers={"Authorization": f"Bearer {workspace_token}"}) as c:
        yield c


@pytest.fixture
def other_client(app, platform):
    _, token = _new_workspace(platform)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(app):
    """The session app on a real socket, for clients that speak HTTP (the CLI)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def datafile_text() -> str:
    return (FIXTURES / "api_sample.datasource").read_text()
