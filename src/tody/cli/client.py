"""The CLI's HTTP client: host and token from flags, then TODY_HOST/TODY_TOKEN, then local discovery."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlparse

import click
import httpx
import orjson

DEFAULT_HOST = "http://127.0.0.1:7181"


class ApiError(click.ClickException):
    def __init__(self, status: int, message: str):
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


class Client:
    def __init__(self, host: str | None = None, token: str | None = None, timeout: float = 60.0):
        self.host = (host or os.environ.get("TODY_HOST") or DEFAULT_HOST).rstrip("/")
        self._token = token or os.environ.get("TODY_TOKEN") or None
        self.timeout = timeout

    def _http(self) -> httpx.Client:
        return httpx.Client(base_url=self.host, timeout=self.timeout)

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self._discover_token()
        return self._token

    def _discover_token(self) -> str:
        host = urlparse(self.host).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            try:
                with self._http() as http:
                    res = http.get("/tokens")
                if res.status_code == 200:
                    return res.json()["workspace_admin_token"]
            except httpx.HTTPError:
                pass
        raise click.UsageError("No token: pass --token or set TODY_TOKEN")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        try:
            with self._http() as http:
                res = http.request(method, path, headers=headers, **kwargs)
        except httpx.ConnectError:
            raise click.ClickException(
                f"Cannot reach the server at {self.host}: is `tody serve` running?"
            ) from None
        if res.status_code >= 400:
            try:
                message = res.json().get("error") or res.text
            except ValueError:
                message = res.text or res.reason_phrase
            raise ApiError(res.status_code, message)
        return res

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self.request(method, path, **kwargs)
        return orjson.loads(res.content) if res.content else {}


def client_options(fn):
    fn = click.option("--token", envvar="TODY_TOKEN", help="Token to use (env TODY_TOKEN).")(fn)
    fn = click.option(
        "--host",
        envvar="TODY_HOST",
        default=DEFAULT_HOST,
        show_default=True,
        help="Server URL (env TODY_HOST).",
    )(fn)
    return fn


FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json prints the API's own JSON shape.",
)


def show_listing(body: dict, fmt: str, headers: tuple[str, ...], rows) -> None:
    """Print a listing as the API's JSON (`--format json`) or as a table of `rows(body)`."""
    if fmt == "json":
        echo_json(body)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers)
    for row in rows(body):
        table.add_row(*(str(v) for v in row))
    Console().print(table)


def echo_json(body: object) -> None:
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


def wait_for_job(client: Client, job_id: str, timeout: float = 3600.0) -> dict:
    """Poll a job until it ends (done, error, cancelled) or `timeout` passes; a spinner shows its status."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    deadline = time.monotonic() + timeout
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
        task = progress.add_task(f"job {job_id}")
        while True:
            job = client.json("GET", f"/v0/jobs/{job_id}")
            progress.update(task, description=f"job {job_id}: {job['status']} {job['progress_percentage']}%")
            if job["status"] in ("done", "error", "cancelled") or time.monotonic() > deadline:
                return job
            time.sleep(0.5)
