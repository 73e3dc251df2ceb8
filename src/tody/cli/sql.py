"""`tody sql`: run a query through the Query API."""

from __future__ import annotations

import re

import click

from tody.cli.client import Client, client_options
from tody.cli.output import format_option, show_result

# --format → the FORMAT clause sent (a table is drawn from the JSON).
FORMATS = {
    "table": "JSON",
    "json": "JSON",
    "csv": "CSVWithNames",
    "ndjson": "JSONEachRow",
    "tsv": "TSVWithNames",
}
# A query that ends with its own FORMAT clause is sent as it is and printed as the server answers.
OWN_FORMAT = re.compile(r"\bFORMAT\s+[A-Za-z]\w*\s*$", re.IGNORECASE)


@click.command()
@click.argument("query")
@format_option(
    *FORMATS,
    default="json",
    help="table draws the rows; json, csv, ndjson and tsv print them (a FORMAT clause in QUERY wins).",
)
@client_options
def sql(query: str, fmt: str, host: str, token: str | None) -> None:
    """Run QUERY (a SELECT) against the workspace and print the result.

    \b
    tody sql "SELECT count() FROM events"
    tody sql "SELECT event, count() AS c FROM events GROUP BY event" --format table
    tody sql "SELECT * FROM events LIMIT 1000" --format csv > events.csv
    """
    text = query.strip().rstrip(";").rstrip()
    own = OWN_FORMAT.search(text) is not None
    if not own:
        text = f"{text} FORMAT {FORMATS[fmt]}"
    res = Client(host, token).request(
        "POST", "/v0/sql", content=text.encode(), headers={"Content-Type": "text/plain"}
    )
    if fmt == "table" and not own:
        show_result(res.json())
    else:
        click.echo(res.content, nl=False)  # bytes: a FORMAT Parquet query prints as it came
