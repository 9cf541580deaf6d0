"""The inbox in a real browser: log in with the link, live notifications acked, read marks, reconnect catch-up."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import expect

from herald.models import AgentNotification, ChannelName, ChannelStatus, Contact, Preferences, Priority
from tests.web.conftest import Session

WAIT_MS = 15_000  # a generous ceiling for the page to catch up; never a claim about speed


def notification(title: str, **fields: object) -> AgentNotification:
    values: dict[str, object] = {"agent_id": "deploy-bot", "user_id": "ada", "title": title, "channels": ["push"]}
    values.update(fields)
    return AgentNotification.model_validate(values)


async def sign_in(session: Session) -> None:
    await session.page.goto(session.link())
    await expect(session.page.locator("#connection")).to_have_text("Live", timeout=WAIT_MS)


async def test_login_link_then_a_live_notification_is_shown_and_acked_into_the_delivery_log(session: Session) -> None:
    page, herald = session.page, session.herald
    await herald.store.users.put_preferences("ada", Preferences(time_zone="Asia/Tokyo"))
    await sign_in(session)
    assert "token" not in page.url, "the token leaves the address bar once it is read"
    await expect(page.locator("#whoami")).to_have_text("ada")
    await expect(page.locator("#inbox-empty")).to_be_visible()

    sent = notification("Deploy finished", body="v2.3.1 is live", priority=Priority.high)
    outcome = await (await herald.client.notify(sent)).outcome()

    # The push channel counts as delivered only after the page acked the frame.
    assert outcome.status == "delivered"
    assert outcome.channels[ChannelName.push].status is ChannelStatus.delivered
    attempts = await herald.store.notifications.attempts(sent.notification_id)
    assert [(a.channel, a.result) for a in attempts] == [(ChannelName.push, ChannelStatus.delivered)]
    assert attempts[0].provider_message_id, "the id of the connection that acked"

    item = page.locator(f'li[data-id="{sent.notification_id}"]')
    await expect(item.locator("h2")).to_contain_text("Deploy finished")
    await expect(item.locator(".body")).to_have_text("v2.3.1 is live")
    await expect(item.locator(".priority")).to_have_text("High")
    await expect(item.locator(".agent")).to_have_text("deploy-bot")
    await expect(item.locator("time")).to_contain_text("GMT+9")  # the user's time zone, not the browser's UTC
    # Its outcome merges in from the audit list by notification_id.
    await expect(item.locator(".status")).to_have_text("Delivered via Push", timeout=WAIT_MS)
    await expect(item).to_have_class(re.compile(r"\bunread\b"))
    await expect(page.locator("#unread-count")).to_have_text("1 unread")


async def test_read_marks_by_item_and_mark_all_survive_a_reload(session: Session) -> None:
    page, herald = session.page, session.herald
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    ids = []
    for title in ["Build green", "Backup done", "Disk at 91%"]:
        sent = notification(title, channels=["email"], agent_id="ops-bot")
        await (await herald.client.notify(sent)).outcome()
        ids.append(sent.notification_id)
    await sign_in(session)
    items = page.locator("li.item")
    await expect(items).to_have_count(3)
    await expect(items.locator("h2")).to_contain_text(["Disk at 91%", "Backup done", "Build green"])  # newest first
    await expect(page.locator("#unread-count")).to_have_text("3 unread")

    first = page.locator(f'li[data-id="{ids[0]}"]')
    await first.get_by_role("button", name="Mark read").click()
    await expect(first).to_have_class(re.compile(r"\bread\b"))
    await expect(page.locator("#unread-count")).to_have_text("2 unread")
    await page.get_by_role("button", name="Mark all read").click()
    await expect(page.locator("#unread-count")).to_be_hidden()

    await page.reload()
    await expect(page.locator("li.item.unread")).to_have_count(0)
    await expect(page.locator("li.item.read")).to_have_count(3)
    state = await herald.store.users.get_inbox_state("ada")
    assert state.read_up_to is not None


async def test_history_pages_with_load_older(session: Session) -> None:
    page, herald = session.page, session.herald
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))

    async def send(i: int) -> None:
        await (await herald.client.notify(notification(f"Report {i:02d}", channels=["email"]))).outcome()

    await asyncio.gather(*(send(i) for i in range(22)))  # more than the first page (20)
    await sign_in(session)
    await expect(page.locator("li.item")).to_have_count(20)
    older = page.get_by_role("button", name="Load older")
    await older.click()
    await expect(page.locator("li.item")).to_have_count(22)
    await expect(older).to_be_hidden()


async def test_after_the_api_comes_back_the_page_reconnects_and_shows_what_it_missed(session: Session) -> None:
    page, herald = session.page, session.herald
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    await sign_in(session)

    await session.api.stop()
    await expect(page.locator("#connection")).to_contain_text("Reconnecting", timeout=WAIT_MS)
    missed = notification("Sent while you were away", channels=["push"])
    outcome = await (await herald.client.notify(missed)).outcome()
    # Nobody was connected: push fell back to email, and the outcome is in the delivery log.
    assert outcome.channels[ChannelName.push].status is ChannelStatus.failed
    assert outcome.channels[ChannelName.email].status is ChannelStatus.delivered

    await session.api.start()
    await expect(page.locator("#connection")).to_have_text("Live", timeout=WAIT_MS)
    item = page.locator(f'li[data-id="{missed.notification_id}"]')
    await expect(item.locator("h2")).to_contain_text("Sent while you were away", timeout=WAIT_MS)
    await expect(item.locator(".status")).to_have_text("Delivered via Email")

    # And the reconnected socket is live again: the next notification arrives and is acked.
    live = notification("Back online")
    assert (await (await herald.client.notify(live)).outcome()).status == "delivered"
    await expect(page.locator(f'li[data-id="{live.notification_id}"] h2')).to_contain_text("Back online")


async def test_a_token_the_server_does_not_know_lands_on_the_sign_in_form(session: Session) -> None:
    page = session.page
    await page.goto(f"{session.api.url}/#token=hrt_never-issued")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("not accepted")
    await page.get_by_label("User token").fill(session.token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_have_text("Live", timeout=WAIT_MS)


async def test_grouped_notifications_say_they_went_together_and_their_one_message_is_listed(session: Session) -> None:
    from tests.faults.procs import eventually

    page, herald = session.page, session.herald
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    grouped = {"channels": ["email"], "agent_id": "shop-bot", "group_key": "checkout", "group_wait_seconds": 4}
    ids = []
    for title in ["Checkout error 1", "Checkout error 2"]:
        sent = notification(title, **grouped)
        assert (await (await herald.client.notify(sent)).outcome()).status == "grouped"
        ids.append(sent.notification_id)

    async def carried() -> bool:
        recorded = [await herald.store.notifications.get_outcome(i) for i in ids]
        return all(o is not None and o.group_delivery is not None for o in recorded)

    await eventually(carried, "the group's message on both")
    await sign_in(session)
    for notification_id in ids:
        item = page.locator(f'li[data-id="{notification_id}"]')
        await expect(item.locator(".status")).to_have_text(
            "Sent together with the others of its group (2 in one message) via Email", timeout=WAIT_MS
        )
    await expect(page.locator("li.item h2", has_text="2 notifications: Checkout error 1")).to_have_count(1)
