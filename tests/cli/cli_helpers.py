"""Running the CLI in tests: one invocation helper with the server, token and user token as flags."""

from __future__ import annotations

from click.testing import CliRunner

from tody.cli.main import cli

PASSWORD = "correct horse battery"


def run(live_server, *args, token=None, user_token=None, input=None):
    flags = ["--host", live_server]
    flags += ["--token", token] if token else []
    flags += ["--user-token", user_token] if user_token else []
    return CliRunner().invoke(cli, [*args, *flags], input=input, catch_exceptions=False)


def ok(res):
    assert res.exit_code == 0, res.output
    return res
