"""`tody serve`: the HTTP server on a data directory (flags and env vars come from tody.settings)."""

from __future__ import annotations

import logging

import click

from tody.settings import SETTINGS, Config


def _setting_options(fn):
    for s in reversed([s for s in SETTINGS if s.flag]):
        fn = click.option(
            s.option, s.name, type=s.type, default=None, help=f"{s.help} [env {s.env}; default {s.default!r}]"
        )(fn)
    return fn


@click.command()
@_setting_options
def serve(**flags) -> None:
    """Start the server (embedded ClickHouse) on the data directory."""
    import uvicorn

    from tody.server.app import create_app
    from tody.services.platform import DataDirInUse, Platform

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
        token = platform.workspaces.admin_tokens(workspace)[0]
        url = f"http://{config.host}:{config.port}"
        click.echo(f"tody is serving {url}  (data: {config.data_path})")
        click.echo(f"workspace {workspace.name!r} admin token: {token}")
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(platform),
                host=config.host,
                port=config.port,
                log_level=config.log_level,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=10,
            )
        )
        server.run()
    finally:
        platform.close()
        click.echo("tody stopped cleanly")
