"""Send notifications and read outcomes: `herald notify`, `herald status`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import typer

from herald.config import Settings
from herald.models import (
    AgentNotification,
    ChannelName,
    NotificationStatus,
    Priority,
)
from herald_cli.common import app, echo_json, fail, skips_teardown, validated, with_store


@app.command()
@skips_teardown
def notify(
    agent: Annotated[str, typer.Option(help="the sending agent's id")],
    title: Annotated[str, typer.Option(help="one line, at most 200 characters")],
    user: Annotated[str | None, typer.Option(help="the recipient's user id (or --group)")] = None,
    to_group: Annotated[
        str | None, typer.Option("--group", help="a group instead of --user: one notification per member")
    ] = None,
    body: Annotated[str, typer.Option(help="the message body")] = "",
    priority: Annotated[Priority, typer.Option(help="low, medium, high or critical")] = Priority.medium,
    channel: Annotated[
        list[ChannelName] | None, typer.Option(help="a channel to use; repeat for several (default push, email)")
    ] = None,
    dedup_key: Annotated[str | None, typer.Option(help="collapse notifications sharing this key")] = None,
    group_key: Annotated[
        str | None, typer.Option(help="deliver it with this agent's others to this user with the same key, as one")
    ] = None,
    group_wait: Annotated[
        int | None, typer.Option(help="with --group-key: seconds the group's first waits for the others (30)")
    ] = None,
    group_interval: Annotated[
        int | None, typer.Option(help="with --group-key: seconds between the group's messages (300)")
    ] = None,
    escalation_policy: Annotated[
        str | None, typer.Option(help="escalate along this policy (herald policies) instead of notifying --user")
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait for the outcome and print it")] = False,
) -> None:
    """Send one notification and print its id (and, with --wait, its outcome)."""
    fields: dict[str, Any] = {"agent_id": agent, "user_id": user, "title": title, "body": body, "priority": priority}
    if to_group is not None:
        fields["group"] = to_group
    if channel:
        fields["channels"] = channel
    if dedup_key is not None:
        fields["dedup_key"] = dedup_key
    if group_key is not None:
        fields["group_key"] = group_key
    if group_wait is not None:
        fields["group_wait_seconds"] = group_wait
    if group_interval is not None:
        fields["group_interval_seconds"] = group_interval
    if escalation_policy is not None:
        fields["escalation_policy"] = escalation_policy
    notification = validated(lambda: AgentNotification(**fields))

    async def _notify() -> Any:
        from starter.client import HeraldClient, QuotaExceeded

        herald = await HeraldClient.connect(Settings())
        try:
            handle = await herald.notify(notification)
        except QuotaExceeded as exc:  # "agent x is over its quota (...): nothing was started; retry in N s"
            raise fail(str(exc), 1) from None
        finally:
            if herald.quota is not None:
                await herald.quota.aclose()
        result: dict[str, Any] = {"notification_id": handle.notification_id, "workflow_id": handle.workflow_id}
        if wait:
            result["outcome"] = (await handle.outcome()).model_dump(mode="json")
        return result

    echo_json(asyncio.run(_notify()))


def escalation_lines(view: Any) -> list[str]:
    """An escalated notification's policy, each step run (who was notified) and who acked; a step's notification:
    who took it."""
    lines: list[str] = []
    if view.escalation is not None:
        e = view.escalation
        lines.append(f"escalation {e.policy}" + (f": {e.error}" if e.error else ""))
        for s in e.steps:
            who = ", ".join(s.notified) or "nobody"
            lines.append(f"  round {s.round + 1} step {s.step + 1} at {s.at:%Y-%m-%d %H:%M:%S}: {who}")
        if e.acked is not None:
            lines.append(f"  acknowledged by {e.acked.by} via {e.acked.channel} at {e.acked.at:%Y-%m-%d %H:%M:%S}")
    if view.taken_by is not None:
        lines.append(f"acknowledged by {view.taken_by.user_id} via {view.taken_by.channel.value} on another step")
    return lines


def outcome_table(items: list[Any]) -> list[str]:
    """Recorded notifications (NotificationSummary) as aligned columns, newest first."""
    header = ("RECORDED", "NOTIFICATION", "STATUS", "PRIORITY", "AGENT", "USER", "CHANNELS")
    rows = [
        (
            f"{item.completed_at:%Y-%m-%d %H:%M:%S}",
            item.notification_id,
            item.status.value,
            item.priority.value,
            item.agent_id,
            item.user_id,
            ",".join(f"{channel.value}:{result.status.value}" for channel, result in item.channels.items()) or "-",
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


def _list_notifications(
    user: str | None,
    agent: str | None,
    status: NotificationStatus | None,
    priority: Priority | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> None:
    from herald.api.views import InvalidCursor, list_notifications

    async def _load(store: Any) -> Any:
        return await list_notifications(
            store,
            user_id=user,
            agent_id=agent,
            status=status,
            priority=priority,
            since=since,
            cursor=cursor,
            limit=limit,
        )

    try:
        page = with_store(_load)
    except InvalidCursor as exc:
        raise fail(f"--cursor: {exc}") from None
    if not page.items:
        typer.echo("no recorded notifications match")
        return
    for line in outcome_table(page.items):
        typer.echo(line)
    if page.next_cursor:
        typer.echo(f"# more: --cursor {page.next_cursor}", err=True)


@app.command()
@skips_teardown
def status(
    notification_id: Annotated[
        str | None, typer.Argument(help="the notification's id; without it, list recorded notifications")
    ] = None,
    user: Annotated[str | None, typer.Option(help="list: only this user's")] = None,
    agent: Annotated[str | None, typer.Option(help="list: only this agent's")] = None,
    status: Annotated[NotificationStatus | None, typer.Option(help="list: only this final status")] = None,
    priority: Annotated[Priority | None, typer.Option(help="list: only this priority")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="list: recorded at or after this time (UTC unless it says)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="list: at most this many")] = 20,
    cursor: Annotated[str | None, typer.Option(help="list: continue where the last list stopped")] = None,
) -> None:
    """Print a notification's status, channels and every attempt; without an id, list finished notifications."""
    if notification_id is None:
        _list_notifications(user, agent, status, priority, since, limit, cursor)
        return

    async def _load(store: Any) -> Any:
        from herald.api.views import load_notification
        from starter.client import HeraldClient

        return await load_notification(store, await HeraldClient.connect(Settings()), notification_id)

    view = with_store(_load)
    if view is None:
        raise fail(f"no notification {notification_id}", 1)
    typer.echo(f"{view.workflow_id}: {view.status.value} ({view.priority.value}, {view.agent_id} -> {view.user_id})")
    for channel, report in view.channels.items():
        via = f" (fallback for {report.fallback_for.value})" if report.fallback_for else ""
        via += " (escalation)" if report.escalation else ""
        typer.echo(f"  {channel.value:8} {report.status}{via}")
        for attempt in report.attempts:
            error = f" {attempt.error_type}: {attempt.error}" if attempt.error_type else ""
            typer.echo(
                f"    #{attempt.attempt} {attempt.result.value} at {attempt.finished_at:%Y-%m-%d %H:%M:%S}{error}"
            )
    if view.duplicate_of:
        typer.echo(f"  duplicate of {view.duplicate_of}")
    if view.group_id:
        sent = view.group_delivery
        carried = f": sent in {sent.notification_id} ({sent.status.value}, {sent.size})" if sent else ": waiting"
        typer.echo(f"  grouped in {view.group_id}{carried}")
    for member, part in view.members.items():
        channels = ",".join(c.value for c in part.channels) or "-"
        said = f" ({part.answer.action_id} via {part.answer.channel.value})" if part.answer else ""
        typer.echo(f"  member {member}: {part.status.value} on {channels}{said} [{part.notification_id}]")
    if view.decision:
        typer.echo(f"  decided: {view.decision.text}")
    if view.group_error:
        typer.echo(f"  {view.group_error}")
    for line in escalation_lines(view):
        typer.echo(f"  {line}")
    if view.ops_alert:
        typer.echo(f"  ops alert: {view.ops_alert}")


@app.command()
@skips_teardown
def resolve(
    agent: Annotated[str, typer.Option(help="the agent whose notifications resolve")],
    dedup_key: Annotated[str, typer.Option(help="the dedup_key they were sent with")],
) -> None:
    """Resolve every open notification the agent sent with that dedup_key, delivered ones too; print what resolved
    (none: a no-op)."""
    from herald.models import ResolveBody

    body = validated(lambda: ResolveBody(agent_id=agent, dedup_key=dedup_key))

    async def _resolve() -> Any:
        from starter.client import HeraldClient

        herald = await HeraldClient.connect(Settings())
        return (await herald.resolve(body.agent_id, body.dedup_key)).model_dump(mode="json")

    echo_json(asyncio.run(_resolve()))
