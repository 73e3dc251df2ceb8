"""`tody datasource`: list and create Data Sources."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.table import Table

from tody.cli.client import Client, client_options


@click.group()
def datasource() -> None:
    """Manage Data Sources."""


@datasource.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@client_options
def ls(fmt: str, host: str, token: str | None) -> None:
    """List the Data Sources of the workspace."""
    body = Client(host, token).json("GET", "/v0/datasources")
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("name", "rows", "bytes", "engine", "created_at")
    for ds in body["datasources"]:
        stats = ds.get("statistics", {})
        table.add_row(
            ds["name"],
            str(stats.get("row_count", 0)),
            str(stats.get("bytes", 0)),
            ds["engine"]["engine"],
            ds["created_at"][:19],
        )
    Console().print(table)


@datasource.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Data Source name (default: the file name without .datasource).")
@client_options
def create(file: Path, name: str | None, host: str, token: str | None) -> None:
    """Create a Data Source from a .datasource FILE."""
    name = name or file.name.split(".")[0]
    body = Client(host, token).json(
        "POST",
        "/v0/datasources",
        params={"name": name, "mode": "create", "format": "datasource"},
        content=file.read_bytes(),
        headers={"Content-Type": "text/plain"},
    )
    click.echo(f"Data Source '{body['datasource']['name']}' created ({body['datasource']['id']})")
