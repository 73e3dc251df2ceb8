"""`tody sql`: run a query through the Query API."""

from __future__ import annotations

import click

from tody.cli.client import Client, client_options

FORMATS = {"json": "JSON", "csv": "CSVWithNames", "ndjson": "JSONEachRow", "tsv": "TSVWithNames"}


@click.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="json", show_default=True)
@client_options
def sql(query: str, fmt: str, host: str, token: str | None) -> None:
    """Run QUERY (a SELECT) against the workspace and print the result."""
    client = Client(host, token)
    text = query.rstrip().rstrip(";")
    if " format " not in text.lower().replace("\n", " "):
        text = f"{text} FORMAT {FORMATS[fmt]}"
    res = client.request("POST", "/v0/sql", content=text.encode(), headers={"Content-Type": "text/plain"})
    click.echo(res.text, nl=False)
