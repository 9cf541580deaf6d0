"""The issue's person, end to end: "push for everything from my coding agent, SMS only if critical, nothing
between 22:00 and 07:00 Berlin time, low priority as an hourly digest".

Whether now is inside 22:00-07:00 in Berlin depends on when the test runs, so the test asks the same pure
schedule the router uses and checks the matching behaviour; a second user with a window around now checks
the hold itself either way.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx

from herald.api.app import create_app
from herald.domain.schedule import quiet_window_end
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
    utcnow,
)
from tests.conftest import Harness, acking
from workflows.digest import DigestWorkflow

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = {
    "time_zone": "Europe/Berlin",
    "default": {"push": False, "email": True, "sms": {"enabled": True, "min_priority": "critical"}},
    "agents": {"coding-agent": {"push": True}},
    "quiet_hours": {"window": "22:00-07:00"},
    "digest": {"cadence": "hourly"},
}


async def person(h: Harness, preferences: dict[str, object]) -> str:
    user = f"user-{uuid.uuid4().hex[:8]}"
    await h.store.users.put_contact(user, Contact(email="ada@example.com", phone="+14155550100"))
    await h.store.users.put_preferences(user, Preferences.model_validate(preferences))
    return user


def note(user: str, agent: str, priority: Priority, *channels: ChannelName) -> AgentNotification:
    return AgentNotification(
        agent_id=agent, user_id=user, title=f"{priority.value} from {agent}", priority=priority, channels=list(channels)
    )


async def test_the_issue_example(herald: Harness) -> None:
    user = await person(herald, EXAMPLE)
    quiet = quiet_window_end("22:00-07:00", BERLIN, utcnow()) is not None

    # Low priority, from any agent: into the hourly digest, never sent on its own.
    low = await (await herald.client.notify(note(user, "other-agent", Priority.low, ChannelName.email))).outcome()
    assert low.status is NotificationStatus.digested and low.channels == {}
    pending = await herald.client.temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}").query(
        DigestWorkflow.pending
    )
    assert [i.notification_id for i in pending] == [low.notification_id]

    # Critical: straight through, day or night, and SMS is allowed for it.
    with herald.runtime.hub.connect(user) as connection:
        acker = asyncio.create_task(acking(connection))
        critical = await (
            await herald.client.notify(note(user, "other-agent", Priority.critical, ChannelName.email, ChannelName.sms))
        ).outcome()
        assert critical.status is NotificationStatus.confirmed and critical.held_until is None
        assert critical.channels[ChannelName.sms].status is ChannelStatus.delivered

        # High from another agent on push and SMS: push is off by default, SMS is for critical only.
        high = await (
            await herald.client.notify(note(user, "other-agent", Priority.high, ChannelName.push, ChannelName.sms))
        ).outcome()
        assert high.status is NotificationStatus.no_channel

        # Medium from the coding agent on push: push is on for that agent; held at night.
        handle = await herald.client.notify(note(user, "coding-agent", Priority.medium, ChannelName.push))
        if quiet:
            for _ in range(100):
                status = await handle.status()
                if status.held_until is not None:
                    break
                await asyncio.sleep(0.05)
            assert status.held_until is not None and status.channels == {}
            await herald.client.temporal.get_workflow_handle(handle.workflow_id).terminate("test over")
        else:
            medium = await handle.outcome()
            assert medium.status is NotificationStatus.delivered
            assert medium.channels[ChannelName.push].status is ChannelStatus.delivered
        acker.cancel()


async def test_quiet_hours_hold_then_send_and_the_api_shows_it(herald: Harness) -> None:
    """A window around now: the notification waits on a durable timer, and the API shows until when."""
    now = utcnow().astimezone(BERLIN)
    start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
    user = await person(herald, {"time_zone": "Europe/Berlin", "quiet_hours": {"window": f"{start:%H:%M}-{end:%H:%M}"}})
    handle = await herald.client.notify(note(user, "coding-agent", Priority.medium, ChannelName.email))
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        for _ in range(100):
            view = (await api.get(f"/v1/notifications/{handle.notification_id}")).json()
            if view.get("held_until"):
                break
            await asyncio.sleep(0.05)
        assert view["status"] == "pending" and view["held_until"] and view["channels"] == {}
    await herald.client.temporal.get_workflow_handle(handle.workflow_id).terminate("held as expected")
