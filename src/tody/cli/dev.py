"""`tody dev`: a local server for the project that follows its files.

It starts `tody serve` as a child process (its own data directory, `.tody-dev` in the project by default,
on a free port unless `--port`), waits for `/health`, pushes the project (`push_project`, with
`force` and `fixtures`), prints each endpoint's URL with a token, then polls the project's datafiles
every half second: changed or new `.datasource`/`.pipe` files are pushed again with `force` (an `.incl`
change pushes the whole project; files that failed or waited on a failed one are retried with the next
change), a deleted `.pipe` is removed from the dev server. Ctrl-C (or SIGTERM) stops the server cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import click
import httpx

from tody.cli.project.layout import FOLDER_OPTION

WATCHED = {".datasource", ".pipe", ".incl"}
SKIP_DIRS = {"node_modules", "__pycache__", "tody-data"}
POLL = 0.5


def say(text: str = "") -> None:
    click.echo(text)
    sys.stdout.flush()  # a pipe (tee, a test) sees each line as it happens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(root: Path, data_dir: Path) -> dict[Path, tuple[int, int]]:
    """{path: (mtime_ns, size)} of the project's datafiles (hidden folders and the data directory skipped)."""
    found: dict[Path, tuple[int, int]] = {}
    data_dir = data_dir.resolve()
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIP_DIRS and (here / d).resolve() != data_dir
        ]
        for name in files:
            path = here / name
            if path.suffix in WATCHED:
                try:
                    st = path.stat()
                except OSError:
                    continue
                found[path] = (st.st_mtime_ns, st.st_size)
    return found


class DevServer:
    """`tody serve` as a child process in its own process group (a terminal's Ctrl-C reaches only `tody dev`,
    which stops the server once)."""

    def __init__(self, data_dir: Path, port: int, log_path: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k not in ("TODY_HOST", "TODY_TOKEN", "TODY_USER_TOKEN")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tody",
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise click.ClickException(
                    f"The dev server exited ({self.proc.returncode}):\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise click.ClickException(
            f"The dev server did not answer /health in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def admin_token(self) -> str:
        res = httpx.get(f"{self.url}/tokens", timeout=10)
        res.raise_for_status()
        return res.json()["workspace_admin_token"]

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _endpoint_urls(client, printed: set[str]) -> None:
    pipes = client.json("GET", "/v0/pipes")["pipes"]
    for pipe in sorted(pipes, key=lambda p: p["name"]):
        if pipe.get("endpoint") and pipe["name"] not in printed:
            printed.add(pipe["name"])
            say(f"  {pipe['name']}: {client.host}/v0/pipes/{quote(pipe['name'])}.json?token={client.token}")


class _Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):
    raise _Interrupted


@click.command()
@click.option("--port", type=int, help="Port for the dev server (default: a free one).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The dev server's data directory (default: .tody-dev in the project).",
)
@FOLDER_OPTION
def dev(port: int | None, data_dir: Path | None, folder: Path | None) -> None:
    """Serve the project locally and push every change: starts `tody serve` on its own data directory,
    pushes the datafiles (with fixtures), prints the endpoint URLs, then watches the project and
    re-pushes changed files. Ctrl-C stops it.

    \b
    tody dev                      # in the project folder
    tody dev --port 7181 --data-dir /tmp/dev-data
    """
    from tody.cli.client import Client
    from tody.cli.project.layout import find_root
    from tody.cli.project.push import push_project

    root = find_root(folder)
    data_dir = (data_dir or root / ".tody-dev").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = data_dir / "dev-server.log"
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        say(f"Starting the dev server on {data_dir} (log: {log_path}) …")
        server = DevServer(data_dir, port, log_path)
        server.wait_ready()
        client = Client(server.url, server.admin_token())
        say(f"tody dev: {server.url}, project {root}")

        def push(files: list[Path] | None) -> set[Path]:
            """Push; the files whose resource failed or was skipped (to retry with the next change)."""
            try:
                summary = push_project(
                    client, root, files, force=True, fixtures=True, echo=lambda s: say(f"  {s}")
                )
            except click.ClickException as exc:  # the server or a file is unreadable now: next change retries
                say(f"  push failed: {exc.format_message()}")
                return set(files or [])
            bad = {o.name for o in summary.outcomes if o.status in ("failed", "skipped")}
            return {
                p for p in snapshot(root, data_dir) if p.suffix != ".incl" and p.name.split(".")[0] in bad
            }

        say("Pushing the project …")
        pending = push(None)
        printed: set[str] = set()
        say("Endpoints:")
        _endpoint_urls(client, printed)
        if not printed:
            say("  (none yet)")
        say(f"Watching {root} for changes (Ctrl-C stops) …")
        seen = snapshot(root, data_dir)
        while True:
            time.sleep(POLL)
            if server.proc.poll() is not None:
                raise click.ClickException(
                    f"The dev server stopped ({server.proc.returncode}):\n{server.log_tail()}"
                )
            now = snapshot(root, data_dir)
            changed = sorted(p for p, sig in now.items() if seen.get(p) != sig)
            removed = sorted(p for p in seen if p not in now)
            if not changed and not removed:
                continue
            for path in changed:
                say(f"{'changed' if path in seen else 'new':<8} {_rel(path, root)}")
            seen = now
            for path in removed:
                say(f"removed  {_rel(path, root)}")
                if path.suffix == ".pipe":
                    _remove_pipe(client, path.name.split(".")[0])
                    printed.discard(path.name.split(".")[0])
            datafiles = [p for p in changed if p.suffix in (".datasource", ".pipe")]
            if any(p.suffix == ".incl" for p in changed):
                pending = push(None)
            elif datafiles:
                pending = push(sorted({*datafiles, *(p for p in pending if p in now)}))
            try:
                _endpoint_urls(client, printed)
            except click.ClickException as exc:
                say(f"  cannot list the endpoints: {exc.format_message()}")
    except _Interrupted:
        say("\nStopping the dev server …")
    finally:
        if server is not None:
            code = server.stop()
            if code not in (0, None):
                say(f"The dev server exited with {code}; its log: {log_path}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if server is not None and server.proc.returncode not in (0, None):
        raise SystemExit(1)
    say("Stopped.")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _remove_pipe(client, name: str) -> None:
    from tody.cli.client import ApiError

    try:
        client.request("DELETE", f"/v0/pipes/{quote(name, safe='')}")
        say(f"  removed pipe {name} from the dev server")
    except ApiError as exc:
        say(f"  pipe {name}: {exc.format_message()}")
