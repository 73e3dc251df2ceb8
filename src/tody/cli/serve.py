"""`tody serve`: the HTTP server on a data directory (flags and env vars come from tody.settings)."""

from __future__ import annotations

import contextlib
import logging
import signal

import click

from tody.settings import SETTINGS, Config


def _setting_options(fn):
    for s in reversed([s for s in SETTINGS if s.flag]):
        fn = click.option(
            s.option, s.name, type=s.type, default=None, help=f"{s.help} [env {s.env}; default {s.default!r}]"
        )(fn)
    return fn


def _server_class():
    import uvicorn  # imported here to keep `tody --help` fast

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would kill the process
        before the engine and catalog are closed; tody finishes its own shutdown and exits 0."""

        @contextlib.contextmanager
        def capture_signals(self):
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


@click.command()
@_setting_options
def serve(**flags) -> None:
    """Start the server (embedded ClickHouse) on the data directory."""
    import uvicorn

    from tody.server.app import create_app
    from tody.services.platform import DataDirInUse, Platform

    _Server = _server_class()
    config = Config.load(**flags)
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        platform = Platform.open(config)
    except DataDirInUse as exc:
        raise click.ClickException(exc.message) from None
    try:
        workspace = platform.workspaces.ensure_default()
        token = platform.workspaces.admin_token(workspace)
        url = f"http://{config.host}:{config.port}"
        click.echo(f"tody is serving {url}  (data: {config.data_path})")
        click.echo(f"workspace {workspace.name!r} admin token: {token}")
        if platform.first_user is not None:  # just made: its password is shown this once
            user_token, password = platform.first_user
            click.echo(f"first user {config.admin_user_email}: user token {user_token}")
            click.echo(f"first user {config.admin_user_email}: password {password}  (shown once: keep it)")
        server = _Server(
            uvicorn.Config(
                create_app(platform),
                host=config.host,
                port=config.port,
                log_level=config.log_level,
                access_log=config.log_level == "debug",
                lifespan="off",
                timeout_graceful_shutdown=10,
            )
        )
        server.run()
    finally:
        platform.close()
        click.echo("tody stopped cleanly")
