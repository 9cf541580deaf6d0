"""Heartbeats from the shell: `herald ping NAME --agent A`, `herald heartbeats set|list|delete`.

Like `herald notify`, these talk to Temporal through HeraldClient (TEMPORAL_ADDRESS, HERALD_TASK_QUEUE, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from herald.config import Settings
from herald.models import ChannelName, HeartbeatSpec, HeartbeatStatus, Priority
from herald_cli.common import app, echo_json, fail, skips_teardown, validated

heartbeats_app = typer.Typer(
    help="Heartbeats: an agent checks in every so often; a missed check-in notifies a person.", no_args_is_help=True
)
app.add_typer(heartbeats_app, name="heartbeats")

T = TypeVar("T")
Agent = Annotated[str, typer.Option(help="the agent whose heartbeat it is")]


def _with_client(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run `action(HeraldClient)`; a heartbeat that isn't there exits 1, Temporal not answering exits 2."""

    async def _main() -> T:
        from temporalio.service import RPCError

        from starter.client import HeartbeatNotFound, HeraldClient

        try:
            return await action(await HeraldClient.connect(Settings()))
        except HeartbeatNotFound as exc:
            raise fail(str(exc), 1) from None
        except RPCError as exc:
            raise fail(f"Temporal did not answer ({exc.status.name}); retry") from None

    return asyncio.run(_main())


@app.command()
@skips_teardown
def ping(name: Annotated[str, typer.Argument(help="the heartbeat's name")], agent: Agent) -> None:
    """Check in for the agent's heartbeat NAME (Temporal keeps it while no worker runs)."""

    async def _ping(client: Any) -> Any:
        return (await client.ping(agent, name)).model_dump(mode="json")

    echo_json(_with_client(_ping))


@heartbeats_app.command("set")
@skips_teardown
def set_heartbeat(
    name: Annotated[str, typer.Argument(help="1-64 of a-z, 0-9, - and _")],
    agent: Agent,
    every: Annotated[int, typer.Option(help="the agent checks in at least this often, in seconds")],
    user: Annotated[str, typer.Option(help="whom a missed check-in notifies")],
    grace: Annotated[int, typer.Option(help="seconds a check-in may be late before it counts as missed")] = 0,
    priority: Annotated[Priority, typer.Option(help="the missed check-in's priority")] = Priority.high,
    channel: Annotated[
        list[ChannelName] | None, typer.Option(help="a channel to use; repeat for several (default push, email)")
    ] = None,
) -> None:
    """Create or change a heartbeat; print it."""
    notify: dict[str, Any] = {"user_id": user, "priority": priority}
    if channel:
        notify["channels"] = channel
    fields = {"name": name, "agent_id": agent, "every_seconds": every, "grace_seconds": grace, "notify": notify}
    spec = validated(lambda: HeartbeatSpec.model_validate(fields))

    async def _set(client: Any) -> None:
        await client.set_heartbeat(spec)

    _with_client(_set)
    echo_json(spec.model_dump(mode="json"))


def heartbeat_table(items: list[HeartbeatStatus]) -> list[str]:
    header = ("AGENT", "NAME", "STATE", "EVERY", "GRACE", "LAST CHECK-IN", "DUE BY", "NOTIFIES")
    rows = [
        (
            h.agent_id,
            h.name,
            h.state.value,
            f"{h.every_seconds}s",
            f"{h.grace_seconds}s",
            f"{h.last_ping_at:%Y-%m-%d %H:%M:%S}",
            f"{h.deadline:%Y-%m-%d %H:%M:%S}",
            h.notify.user_id,
        )
        for h in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


@heartbeats_app.command("list")
@skips_teardown
def list_heartbeats(
    agent: Annotated[str | None, typer.Option(help="only this agent's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """The watched heartbeats, with their state, last check-in and deadline (times in UTC; needs a worker)."""

    async def _list(client: Any) -> list[HeartbeatStatus]:
        found: list[HeartbeatStatus] = await client.heartbeats(agent)
        return found

    found = _with_client(_list)
    if as_json:
        echo_json({"heartbeats": [h.model_dump(mode="json") for h in found]})
        return
    if not found:
        typer.echo("no heartbeats")
        return
    for line in heartbeat_table(found):
        typer.echo(line)


@heartbeats_app.command("delete")
@skips_teardown
def delete_heartbeat(name: Annotated[str, typer.Argument(help="the heartbeat's name")], agent: Agent) -> None:
    """Stop watching a heartbeat: nothing more is sent for it."""

    async def _delete(client: Any) -> None:
        await client.delete_heartbeat(agent, name)

    _with_client(_delete)
    typer.echo(f"deleted heartbeat {name} of {agent}")
