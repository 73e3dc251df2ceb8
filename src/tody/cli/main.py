"""`tody`: the command line. One module per command group; this one only assembles them."""

from __future__ import annotations

import click

from tody import __version__
from tody.cli.datasource import datasource
from tody.cli.dev import dev
from tody.cli.job import job
from tody.cli.org import org
from tody.cli.pipe import pipe
from tody.cli.project.auth import auth
from tody.cli.project.check import check
from tody.cli.project.diff import diff
from tody.cli.project.fmt import fmt
from tody.cli.project.init import init
from tody.cli.project.pull import pull
from tody.cli.project.push import push
from tody.cli.serve import serve
from tody.cli.sql import sql
from tody.cli.test_cmd import test
from tody.cli.token import token
from tody.cli.user import user
from tody.cli.workspace import workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tody")
def cli() -> None:
    """tody: ingest data, shape it with SQL, publish it as fast HTTP APIs. Speaks Tinybird's API."""


cli.add_command(serve)
cli.add_command(init)
cli.add_command(auth)
cli.add_command(push)
cli.add_command(pull)
cli.add_command(check)
cli.add_command(fmt)
cli.add_command(diff)
cli.add_command(sql)
cli.add_command(datasource)
cli.add_command(pipe)
cli.add_command(job)
cli.add_command(token)
cli.add_command(workspace)
cli.add_command(user)
cli.add_command(org)
cli.add_command(test)
cli.add_command(dev)


def main() -> None:
    cli()
