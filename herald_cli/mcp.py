"""`herald mcp`: Herald's tools for agents over the Model Context Protocol (stdio or streamable HTTP)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import typer
from pydantic import SecretStr

from herald.config import Settings
from herald_cli.common import app, fail, skips_teardown


@app.command()
@skips_teardown
def mcp(
    transport: Annotated[
        Literal["stdio", "http"], typer.Option(help="stdio (an MCP client starts this) or streamable HTTP at /mcp")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="http: bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="http: port")] = 8765,
    agent_key: Annotated[
        str | None,
        typer.Option(
            help="the agent key the tools speak for (default HERALD_AGENT_KEY, better: a command line is visible to other users); http: requests must send it",
            show_default=False,
        ),
    ] = None,
    progress_seconds: Annotated[
        float, typer.Option(min=0.05, help="ask_user: seconds between progress notifications")
    ] = 5.0,
) -> None:
    """Serve notify_user, ask_user, emit_event and notification_status as MCP tools for one agent.

    stdio needs an agent key (HERALD_AGENT_KEY or --agent-key). Over HTTP each request sends
    `Authorization: Bearer <agent key>` and acts as that key's agent; a key given here pins the server to it.
    """
    from herald.adapters.logs import configure_logging
    from herald_cli.mcp_server import ServeError, serve
    from starter.client import TemporalSettingsError

    settings = Settings()
    if agent_key is not None:
        settings = settings.changed(agent_key=SecretStr(agent_key))
    # stdout carries the protocol on stdio: logs go to stderr only.
    configure_logging(settings.ops.log_format or "json", settings.ops.log_level)
    try:
        asyncio.run(serve(settings, transport=transport, host=host, port=port, progress_seconds=progress_seconds))
    except (ServeError, TemporalSettingsError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass
