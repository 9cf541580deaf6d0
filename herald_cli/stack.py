"""Run Herald: `herald dev`, `herald worker`, `herald api`."""

from __future__ import annotations

from typing import Annotated

import typer

from herald.config import Settings, SettingsError, check_settings
from herald_cli.common import app, fail, skips_teardown, wants_link


@app.command()
@skips_teardown
def dev(
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port")] = 8233,
    api_port: Annotated[int, typer.Option(help="Herald API port")] = 8000,
    demo: Annotated[bool, typer.Option(help="send one demo notification once the stack is up")] = False,
    auth: Annotated[
        bool, typer.Option("--auth", help="require bearer tokens as `herald api` does (dev is open by default)")
    ] = False,
    link: Annotated[
        bool | None,
        typer.Option(
            "--link/--no-link",
            help="print a login link to the demo user's inbox; default: on a terminal only, as the link holds a token",
        ),
    ] = None,
) -> None:
    """Run Temporal's dev server, a worker and the API together (data under HERALD_HOME)."""
    from herald.adapters.logs import configure_logging
    from herald_cli.dev import DevPorts, main

    settings = Settings()
    configure_logging(settings.ops.log_format or "text", settings.ops.log_level)
    ports = DevPorts(temporal=temporal_port, ui=ui_port, api=api_port)
    main(settings, ports, demo, auth, link=wants_link(link))


@app.command()
@skips_teardown
def worker() -> None:
    """Run a worker against TEMPORAL_ADDRESS (all workflows and activities on HERALD_TASK_QUEUE)."""
    from worker import main

    main()


@app.command()
@skips_teardown
def api(
    host: Annotated[str | None, typer.Option(help="bind address (default HERALD_API_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default HERALD_API_PORT or 8000)")] = None,
) -> None:
    """Serve the HTTP API (FastAPI, OpenAPI at /docs). Every call needs a bearer token (see `keys`, `tokens`)."""
    import functools

    import uvicorn

    from herald.adapters.logs import configure_logging
    from herald.api.app import API_SHUTDOWN_SECONDS, create_app
    from starter import HeraldClient

    settings = Settings().changed(auth=True)
    try:
        check_settings(settings)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    configure_logging(settings.ops.log_format or "json", settings.ops.log_level)
    _refuse_an_old_schema(settings)
    if settings.api.admin_key is None:
        typer.echo("# HERALD_ADMIN_KEY is unset: /v1/rules is closed; manage rules with `herald rules`", err=True)
    # log_config=None keeps the JSON logging configured above; the API logs each request itself.
    uvicorn.run(
        # The API applies each agent key's quota itself: its own client takes no second token.
        create_app(settings, connect=functools.partial(HeraldClient.connect, quota=False)),
        host=host or settings.api.api_host,
        port=port or settings.api.api_port,
        log_config=None,
        access_log=False,
        # Open WebSockets would hold a shutdown forever; browsers reconnect and catch up on their own.
        timeout_graceful_shutdown=API_SHUTDOWN_SECONDS,
    )


def _refuse_an_old_schema(settings: Settings) -> None:
    """`herald api` never migrates: on a database behind this Herald it stops here, saying `herald db upgrade`."""
    import asyncio

    from herald.adapters.store import SchemaOutOfDate, Store

    async def check() -> None:
        store = await Store.open(settings.resolved_database_url)
        await store.close()

    try:
        asyncio.run(check())
    except SchemaOutOfDate as exc:
        raise fail(str(exc)) from None
