"""A heartbeat's decisions: when it is due, what a ping, a deadline or a new spec does in each state, and the
notifications it sends. Pure: HeartbeatWorkflow calls these with `workflow.now()`, tests call them with any time.

A heartbeat is `up` until `last_ping_at + every_seconds + grace_seconds` passes without a ping; then it is
`missed`, and says so once (`HeartbeatEvent.missed`), however long the silence lasts. The next ping makes it
`up` again and says that once (`resumed`). A ping counts at the time it was sent (clamped between the last ping
and now), so a ping that reached Temporal in time still counts as in time when a worker handles it later (a
worker restart invents no miss), and a deadline that passed while no worker ran is still a miss once one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from herald.models import (
    AgentNotification,
    HeartbeatEvent,
    HeartbeatRun,
    HeartbeatSpec,
    HeartbeatState,
    HeartbeatStatus,
)


@dataclass(frozen=True)
class Notice:
    """Something the heartbeat tells its person, with the times it speaks of as they were then."""

    event: HeartbeatEvent
    last_ping_at: datetime  # the check-in before the miss (missed), or the one that ended it (resumed)
    due: datetime  # the deadline that was missed


def started(run: HeartbeatRun, now: datetime) -> HeartbeatRun:
    """A new heartbeat counts its start as its first check-in."""
    if run.last_ping_at is None:
        run.last_ping_at = now
    return run


def last_ping(run: HeartbeatRun) -> datetime:
    assert run.last_ping_at is not None, "a running heartbeat has started (see `started`)"
    return run.last_ping_at


def deadline(run: HeartbeatRun) -> datetime:
    """When the next check-in is due: the last one plus every_seconds and grace_seconds."""
    spec = run.config.spec
    return last_ping(run) + timedelta(seconds=spec.every_seconds + spec.grace_seconds)


def check_deadline(run: HeartbeatRun, now: datetime) -> list[Notice]:
    """At `now`, an `up` heartbeat whose deadline has passed becomes `missed` (once: a missed one stays quiet)."""
    if run.state is HeartbeatState.up and now >= deadline(run):
        run.missed_at = deadline(run)
        run.state = HeartbeatState.missed
        return [Notice(HeartbeatEvent.missed, last_ping(run), run.missed_at)]
    return []


def ping(run: HeartbeatRun, at: datetime, now: datetime) -> list[Notice]:
    """A ping sent at `at` (clamped between the last ping and `now`), handled at `now`.

    In time: the deadline moves on, nothing is said. After a deadline nobody acted on yet (no worker ran when
    it passed): that miss is reported, then the ping ends it. While missed: it ends the miss (`resumed`).
    """
    at = min(max(at, last_ping(run)), now)
    notices = check_deadline(run, at)
    if run.state is HeartbeatState.missed:
        assert run.missed_at is not None
        notices.append(Notice(HeartbeatEvent.resumed, at, run.missed_at))
    run.state = HeartbeatState.up
    run.last_ping_at = at
    run.missed_at = None
    return notices


def configure(run: HeartbeatRun, spec: HeartbeatSpec, now: datetime) -> list[Notice]:
    """A new spec (PUT again) applies from the last ping: a shorter period may make the heartbeat missed at once.
    Name and agent are the workflow's own and never change."""
    current = run.config.spec
    if (spec.agent_id, spec.name) != (current.agent_id, current.name):
        raise ValueError(f"spec for {spec.workflow_id} sent to {current.workflow_id}")
    run.config.spec = spec
    return check_deadline(run, now)


def status(run: HeartbeatRun) -> HeartbeatStatus:
    spec = run.config.spec
    return HeartbeatStatus(
        name=spec.name,
        agent_id=spec.agent_id,
        every_seconds=spec.every_seconds,
        grace_seconds=spec.grace_seconds,
        notify=spec.notify,
        state=run.state,
        last_ping_at=last_ping(run),
        deadline=deadline(run),
        missed_at=run.missed_at,
    )


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def notification(spec: HeartbeatSpec, notice: Notice, notification_id: str, now: datetime) -> AgentNotification:
    """What the heartbeat's person is told: `<name> missed its check-in`, or `<name> checked in again`.

    Each is its own notification (`dedup_key` `heartbeat/<name>/<notification_id>`): the heartbeat's state is its
    dedup (one miss, one resume), so a second miss minutes after a resume is not suppressed as a repeat of the first.
    """
    if notice.event is HeartbeatEvent.missed:
        title = f"{spec.name} missed its check-in"
        body = (
            f"No check-in from {spec.agent_id} since {_when(notice.last_ping_at)}: it was due by {_when(notice.due)} "
            f"(every {spec.every_seconds} s, {spec.grace_seconds} s grace)."
        )
    else:
        title = f"{spec.name} checked in again"
        body = f"{spec.agent_id} checked in at {_when(notice.last_ping_at)}, after missing its check-in due {_when(notice.due)}."
    values: dict[str, object] = {
        "notification_id": notification_id,
        "agent_id": spec.agent_id,
        "user_id": spec.notify.user_id,
        "title": title,
        "body": body,
        "priority": spec.notify.priority,
        "created_at": now,
        "dedup_key": f"heartbeat/{spec.name}/{notification_id}",
        "metadata": {"heartbeat": spec.name, "event": notice.event.value},
    }
    if spec.notify.channels is not None:
        values["channels"] = spec.notify.channels
    return AgentNotification.model_validate(values)
