"""An action answered in words in the browser inbox: a text box beside its button, the typed words reaching the
waiting agent as `answer.text`, shown on the item once answered; the server's refusal of an empty answer shown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from herald.models import AnswerChannel
from tests.web.conftest import Session
from tests.web.test_inbox_answers import WAIT_MS, question, sign_in

WORDS = "Keep it, but page Zoë if errors pass 2% 🚨"


async def test_typing_an_answer_reaches_the_waiting_agent(session: Session) -> None:
    page, herald = session.page, session.herald
    await sign_in(session)
    asked = question(
        "Keep the release?",
        actions=[{"id": "keep", "label": "Keep it"}, {"id": "why", "label": "Explain", "input": "text"}],
        respond_by=datetime.now(UTC) + timedelta(hours=1),
    )
    waiting = asyncio.create_task(herald.client.ask(asked))
    item = page.locator(f'li[data-id="{asked.notification_id}"]')
    box = item.get_by_role("textbox", name="Explain: your answer")
    await expect(box).to_be_editable(timeout=WAIT_MS)
    assert await box.get_attribute("maxlength") == "2000"

    # Sent empty: the server refuses it, naming text, and the question stays open.
    await item.get_by_role("button", name="Explain", exact=True).click()
    await expect(item.locator(".answer-error")).to_contain_text("text: must not be empty", timeout=WAIT_MS)
    assert not waiting.done()

    await box.fill(WORDS)
    await item.get_by_role("button", name="Explain", exact=True).click()
    outcome = await asyncio.wait_for(waiting, timeout=30)
    assert outcome.answer is not None
    assert (outcome.answer.action_id, outcome.answer.text, outcome.answer.channel) == ("why", WORDS, AnswerChannel.push)
    await expect(item.locator(".answer-words")).to_have_text(WORDS, timeout=WAIT_MS)
    await expect(item.get_by_role("textbox")).to_have_count(0)
