"""Questions in the browser inbox: their actions as buttons, the answer reaching the waiting agent, answers given on
another channel shown on the page, and a question past its deadline with its buttons disabled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from herald.models import AgentNotification, AnswerChannel, Priority
from tests.web.conftest import DESKTOP, PHONE, Session, screenshot_path

WAIT_MS = 15_000  # a generous ceiling for the page to catch up; never a claim about speed


def question(title: str, **fields: object) -> AgentNotification:
    values: dict[str, object] = {
        "agent_id": "deploy-bot",
        "user_id": "ada",
        "title": title,
        "priority": Priority.high,
        "channels": ["push"],
        "actions": [{"id": "rollback", "label": "Roll back"}, {"id": "keep", "label": "Keep it"}],
    }
    values.update(fields)
    return AgentNotification.model_validate(values)


async def sign_in(session: Session) -> None:
    await session.page.goto(session.link())
    await expect(session.page.locator("#connection")).to_have_text("Live", timeout=WAIT_MS)


async def test_clicking_an_action_answers_the_waiting_agent(session: Session, tmp_path: Path) -> None:
    """The page used to show a question with no buttons at all and never sent `respond`: the agent waited forever."""
    page, herald = session.page, session.herald
    await sign_in(session)
    asked = question("Roll back release?", respond_by=datetime.now(UTC) + timedelta(hours=1))
    waiting = asyncio.create_task(herald.client.ask(asked))

    item = page.locator(f'li[data-id="{asked.notification_id}"]')
    await expect(item.locator("h2")).to_contain_text("Roll back release?", timeout=WAIT_MS)
    await expect(item.locator(".status")).to_have_text("Waiting for your answer", timeout=WAIT_MS)
    for name in ["Roll back", "Keep it", "Seen", "Snooze 1 h"]:
        await expect(item.get_by_role("button", name=name, exact=True)).to_be_enabled()
    await page.screenshot(path=screenshot_path(tmp_path, "inbox-question-desktop"), full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=screenshot_path(tmp_path, "inbox-question-phone"), full_page=True)
    await page.set_viewport_size(DESKTOP)

    await item.get_by_role("button", name="Roll back").click()
    outcome = await asyncio.wait_for(waiting, timeout=30)
    assert outcome.status == "answered"
    assert outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.user_id, outcome.answer.channel) == (
        "rollback",
        "ada",
        AnswerChannel.push,
    )
    await expect(item.locator(".answered")).to_contain_text("“Roll back” by you via Push", timeout=WAIT_MS)
    await expect(item.locator(".status")).to_have_text("Answered (sent via Push)", timeout=WAIT_MS)
    for name in ["Roll back", "Keep it", "Seen", "Snooze 1 h"]:
        await expect(item.get_by_role("button", name=name, exact=True)).to_be_disabled()


async def test_an_answer_given_on_another_channel_reaches_the_page(session: Session) -> None:
    """The page used to keep showing an open question (and no answer) after it was answered by email link or API."""
    page, herald = session.page, session.herald
    await sign_in(session)
    asked = question(
        "Scale the cluster?", actions=[{"id": "yes", "label": "Scale up"}, {"id": "no", "label": "Leave it"}]
    )
    handle = await herald.client.notify(asked)
    item = page.locator(f'li[data-id="{asked.notification_id}"]')
    await expect(item.get_by_role("button", name="Scale up")).to_be_enabled(timeout=WAIT_MS)

    # Seen first, on another channel: the question stays open, Seen and Snooze are spent.
    await herald.client.respond(asked.notification_id, "ack", "ada", AnswerChannel.sms)
    await expect(item.locator(".acknowledged")).to_contain_text("Seen by you via SMS", timeout=WAIT_MS)
    await expect(item.get_by_role("button", name="Seen")).to_be_disabled()
    await expect(item.get_by_role("button", name="Scale up")).to_be_enabled()

    await herald.client.respond(asked.notification_id, "no", "ada", AnswerChannel.email)
    assert (await handle.outcome()).status == "answered"
    await expect(item.locator(".answered")).to_contain_text("“Leave it” by you via Email link", timeout=WAIT_MS)
    await expect(item.get_by_role("button", name="Scale up")).to_be_disabled()
    await expect(item.get_by_role("button", name="Leave it")).to_be_disabled()


async def test_a_refused_answer_shows_the_servers_reason(session: Session) -> None:
    """The page had no way to answer, so a refusal (here: answered elsewhere a moment before) was never shown."""
    page, herald = session.page, session.herald
    await sign_in(session)
    asked = question("Restart the worker?")
    handle = await herald.client.notify(asked)
    item = page.locator(f'li[data-id="{asked.notification_id}"]')
    button = item.get_by_role("button", name="Keep it")
    await expect(button).to_be_enabled(timeout=WAIT_MS)
    # Hold the page's re-reads back so it still shows the question open when the click goes out.
    await page.route("**/v1/notifications/**", lambda route: route.abort())
    await herald.client.respond(asked.notification_id, "rollback", "ada", AnswerChannel.api)
    await handle.outcome()
    await button.click()
    await expect(item.locator(".answer-error")).to_contain_text("Not taken:", timeout=WAIT_MS)
    await page.unroute("**/v1/notifications/**")
    await expect(item.locator(".answered")).to_contain_text("“Roll back” by you via the API", timeout=WAIT_MS)


async def test_a_question_past_its_deadline_has_its_buttons_disabled(session: Session) -> None:
    """The page used to show nothing to answer with; now a question that expired must not offer live buttons."""
    page, herald = session.page, session.herald
    await sign_in(session)
    asked = question("Approve the hotfix?", respond_by=datetime.now(UTC) + timedelta(seconds=3))
    outcome = await herald.client.ask(asked)
    assert outcome.status == "expired"
    item = page.locator(f'li[data-id="{asked.notification_id}"]')
    await expect(item.locator(".expired")).to_contain_text("Expired: no longer takes answers", timeout=WAIT_MS)
    for name in ["Roll back", "Keep it", "Seen", "Snooze 1 h"]:
        await expect(item.get_by_role("button", name=name, exact=True)).to_be_disabled()
    await expect(item.locator(".status")).to_have_text("Expired (sent via Push)", timeout=WAIT_MS)

    # After a reload the question comes from the audit list alone, still with its buttons, still disabled.
    await page.reload()
    await expect(item.get_by_role("button", name="Roll back")).to_be_disabled(timeout=WAIT_MS)


async def test_a_question_to_a_group_decided_by_another_member_says_so_on_the_page(session: Session) -> None:
    """ada's own question of a group's: grace answers first (quorum "first"), and ada's page shows what the group
    decided, its buttons disabled."""
    from herald.domain.teams import member_notification_id
    from herald.models import Contact, Group, utcnow

    page, herald = session.page, session.herald
    await sign_in(session)
    await herald.store.users.put_contact("grace", Contact(email="grace@example.com"))
    now = utcnow()
    await herald.store.groups.put(Group(name="oncall", members=["ada", "grace"], created_at=now, updated_at=now))
    asked = question("Fail over the database?", user_id=None, group="oncall", channels=["push", "email"])
    handle = await herald.client.notify(asked)
    item = page.locator(f'li[data-id="{member_notification_id(asked.notification_id, "ada")}"]')
    await expect(item.get_by_role("button", name="Roll back")).to_be_enabled(timeout=WAIT_MS)

    grace = member_notification_id(asked.notification_id, "grace")
    for _ in range(400):
        if (herald.outbox("email") / f"{grace}.json").exists():
            break
        await asyncio.sleep(0.025)
    await herald.client.respond(grace, "rollback", "grace", AnswerChannel.email)
    outcome = await asyncio.wait_for(handle.outcome(), timeout=30)
    assert outcome.decision is not None and outcome.decision.text == "“Roll back” chosen by grace"
    await expect(item.locator(".decided")).to_have_text(
        "The group decided: “Roll back” chosen by grace", timeout=WAIT_MS
    )
    for name in ["Roll back", "Keep it"]:
        await expect(item.get_by_role("button", name=name, exact=True)).to_be_disabled()
