"""The CLI's HTTP client. Host and tokens come from, in order: flags, then TODY_HOST/TODY_TOKEN/
TODY_USER_TOKEN, then the project's `.tinyb` (the current directory's or the nearest parent's, written
by `tody auth` or `tb auth`), then the CLI config (`tody.cli.config`, written by `tody workspace use`),
then (the workspace token) local discovery."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import httpx
import orjson

from tody.cli import config as cli_config
from tody.cli.project import tinyb

DEFAULT_HOST = "http://127.0.0.1:7181"


class ApiError(click.ClickException):
    def __init__(self, status: int, message: str):
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


class Client:
    def __init__(
        self,
        host: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        *,
        user_token: str | None = None,
        project_dir: Path | None = None,
    ):
        """`project_dir`: where to look for the project's `.tinyb` (it or its nearest parent; default: the
        current directory)."""
        config = cli_config.load()
        self.project_config_path, project = tinyb.load(project_dir)
        self.host = (
            host
            or os.environ.get("TODY_HOST")
            or tinyb.host_of(project)
            or config.get("host")
            or DEFAULT_HOST
        ).rstrip("/")
        saved = cli_config.saved_for(config, self.host)
        self._token = (
            token
            or os.environ.get("TODY_TOKEN")
            or tinyb.token_for(project, self.host)
            or saved.get("token")
            or None
        )
        self._user_token = user_token or os.environ.get("TODY_USER_TOKEN") or saved.get("user_token") or None
        self.timeout = timeout

    def _http(self) -> httpx.Client:
        return httpx.Client(base_url=self.host, timeout=self.timeout)

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self._discover_token()
        return self._token

    @property
    def known_token(self) -> str | None:
        """The token from a flag, the environment or the config; None (no discovery) without one."""
        return self._token

    @property
    def has_user_token(self) -> bool:
        return self._user_token is not None

    @property
    def user_token(self) -> str:
        """The user token (ADMIN_USER): users, organizations, workspaces of the user."""
        if self._user_token is None:
            raise click.UsageError(
                "No user token: pass --user-token or set TODY_USER_TOKEN (`tody serve` prints the first "
                "user's at first start, `tody user create` a new user's)"
            )
        return self._user_token

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
        raise click.UsageError(
            "No token: pass --token, set TODY_TOKEN, run `tody auth --token T` in the project folder or "
            "`tody workspace use NAME`"
        )

    def request(self, method: str, path: str, *, as_user: bool = False, **kwargs: Any) -> httpx.Response:
        """`as_user`: send the user token instead of the workspace token."""
        value = self.user_token if as_user else self.token
        headers = {"Authorization": f"Bearer {value}", **kwargs.pop("headers", {})}
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


HOST_OPTION = click.option(
    "--host",
    envvar="TODY_HOST",
    help=f"Server URL (env TODY_HOST; else the project's .tinyb, the CLI config's, {DEFAULT_HOST}).",
)
USER_TOKEN_OPTION = click.option(
    "--user-token",
    envvar="TODY_USER_TOKEN",
    help="User token (env TODY_USER_TOKEN; else the one `tody workspace use` stored).",
)


def acting_on(client: Client, workspace: str | None = None) -> tuple[str, bool]:
    """For commands that act on a workspace as its admin (members, sharing): the workspace (`workspace`,
    else the token's), and whether to send the user token (when there is one) or the workspace token."""
    target = workspace or client.json("GET", "/v0/workspace")["id"]
    return target, client.has_user_token


def client_options(fn):
    fn = click.option(
        "--token",
        envvar="TODY_TOKEN",
        help="Token (env TODY_TOKEN; else the project's .tinyb, the CLI config's).",
    )(fn)
    return HOST_OPTION(fn)


def user_options(fn):
    """--host and --user-token, for commands that act as a user (users, organizations, workspaces)."""
    return HOST_OPTION(USER_TOKEN_OPTION(fn))


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
