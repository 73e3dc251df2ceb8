"""`tody init [DIR]`: scaffold a project in Tinybird's layout; never overwrites anything.

It makes datasources/, pipes/, fixtures/ and tests/, a `.tinyb` with the server's host (and, when a
token is given with --token or TODY_TOKEN and the server accepts it, the token and its workspace, as
`tody auth` writes them), and a `.gitignore` that keeps `.tinyb` (it holds a token) out of git. An
existing Tinybird project folder needs none of this: every command reads it as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from tody import __version__
from tody.cli.client import ApiError, Client, client_options
from tody.cli.project import tinyb
from tody.cli.project.layout import SCAFFOLD


@click.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False, path_type=Path))
@client_options
def init(folder: Path, host: str | None, token: str | None) -> None:
    """Scaffold a project in FOLDER (default: the current one): datasources/, pipes/, fixtures/, tests/
    and a .tinyb project config. Existing files and folders are kept as they are."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SCAFFOLD:
        path = folder / name
        if path.is_dir():
            click.echo(f"{'exists':<8} {name}/")
        else:
            path.mkdir()
            click.echo(f"{'created':<8} {name}/")
    config_path = folder / tinyb.FILENAME
    if config_path.exists():
        click.echo(f"{'exists':<8} {tinyb.FILENAME}")
    else:
        tinyb.write(config_path, _config(host, token))
        click.echo(f"{'created':<8} {tinyb.FILENAME}")
    ignore = folder / ".gitignore"
    if ignore.exists():
        if tinyb.FILENAME not in ignore.read_text().split():
            click.echo(f"{'exists':<8} .gitignore (add {tinyb.FILENAME} to it: the file holds a token)")
        else:
            click.echo(f"{'exists':<8} .gitignore")
    else:
        ignore.write_text(f"{tinyb.FILENAME}\n")
        click.echo(f"{'created':<8} .gitignore")
    click.echo(
        "Add .datasource files to datasources/ and .pipe files to pipes/, then `tody check` and `tody push`."
    )


def _config(host: str | None, token: str | None) -> dict:
    client = Client(host, token, timeout=5.0)
    config: dict = {"host": client.host, "version": __version__}
    explicit = token or os.environ.get("TODY_TOKEN")
    if not explicit:
        return config
    try:
        workspace = client.json("GET", "/v0/workspace")
    except (ApiError, click.ClickException) as exc:
        click.echo(f"Could not check the token ({exc.format_message()}); saved it anyway", err=True)
        return {**config, "token": explicit, "tokens": {client.host: explicit}}
    return tinyb.authenticated(config, client.host, explicit, workspace)
