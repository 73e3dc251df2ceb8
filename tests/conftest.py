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


CONFIG = dict(
    max_execution_time=3.0, max_rows_to_read=1_000_000_000, query_pool_size=2, events_flush_interval=0.1
)


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
    p.scheduler.close()
    p.events.close()
    p.jobs.close()
    p.stats.close()  # before the engine fixture closes the engine
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


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server for imports from a URL: serves the files of `dir`; `/status/<code>` answers
    that status, `/redirect/<path>` redirects to `/<path>`, `/slow/<n>` sends n CSV lines slowly.
    Yields an object with `.url(path)` and `.dir`."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "served"
    root.mkdir()

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/status/"):
                self.send_error(int(self.path.split("/")[2]))
            elif self.path.startswith("/slow/"):  # n lines, one every 50 ms: time to cancel
                lines = int(self.path.split("/")[2])
                self.send_response(200)
                self.send_header("Content-Length", str(lines * 4))
                self.end_headers()
                try:
                    for i in range(lines):
                        self.wfile.write(b"%03d\n" % (i % 1000))
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:  # the client went away (cancelled)
                    pass
            elif self.path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", "/" + self.path.split("/", 2)[2])
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                super().do_GET()

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Served:
        dir = root
        base = f"http://127.0.0.1:{server.server_address[1]}"

        def url(self, path: str) -> str:
            return f"{self.base}/{path.lstrip('/')}"

    yield Served()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def private_urls(platform, monkeypatch):
    """Allow imports from loopback URLs (the test file server) for this test only."""
    import dataclasses

    monkeypatch.setattr(
        platform, "config", dataclasses.replace(platform.config, import_allow_private_urls=True)
    )
