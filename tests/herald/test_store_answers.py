"""What answering keeps in the store, on SQLite and PostgreSQL: single-use links, SMS questions, snoozes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from herald.adapters.store import SmsQuestion, Store
from herald.domain.answers import REFUSED_REASON_MAX_CHARS, phone_key
from herald.models import (
    REFUSED_ANSWERS_MAX,
    AnswerChannel,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
    RefusedAnswer,
    Snooze,
)
from tests.herald.test_store import store  # noqa: F401  (the SQLite + PostgreSQL fixture)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PHONE = "+14155550100"


async def test_an_answer_link_works_once(store: Store) -> None:  # noqa: F811
    answers = store.answers
    expires = (NOW + timedelta(hours=1)).timestamp()
    assert await answers.use_link("nonce-1", "q1", expires) is True
    assert await answers.use_link("nonce-1", "q1", expires) is False
    assert await answers.use_link("nonce-2", "q1", expires) is True


async def test_a_link_counts_as_used_only_once_it_is_used(store: Store) -> None:  # noqa: F811
    answers = store.answers
    assert await answers.link_used("nonce-1") is False
    assert await answers.use_link("nonce-1", "q1", (NOW + timedelta(hours=1)).timestamp()) is True
    assert await answers.link_used("nonce-1") is True and await answers.link_used("nonce-2") is False


async def test_refused_answers_are_kept_up_to_a_cap_each_bounded(store: Store) -> None:  # noqa: F811
    """Refused answers used to be stored one row each, without end and whatever their reason's size: a socket
    sending bad answers in a loop grew the table for ever. Now a notification keeps REFUSED_ANSWERS_MAX of them,
    even when they arrive all at once, and each reason is cut to REFUSED_REASON_MAX_CHARS."""
    answers = store.answers

    def refusal(number: int, reason: str = "unknown action") -> RefusedAnswer:
        return RefusedAnswer(action_id=f"a{number}", channel=AnswerChannel.push, at=NOW, reason=reason)

    huge = await answers.record_refusal("q-flood", refusal(0, "x" * 100_000))
    kept = await asyncio.gather(*(answers.record_refusal("q-flood", refusal(n)) for n in range(1, 60)))
    stored = await answers.refusals("q-flood")
    assert len(stored) == REFUSED_ANSWERS_MAX
    assert len(stored[0].reason) == REFUSED_REASON_MAX_CHARS and stored[0].reason.endswith("…")
    assert huge is True and kept.count(True) == REFUSED_ANSWERS_MAX - 1  # says whether it kept each one
    # Another notification has its own record.
    assert await answers.record_refusal("q-other", refusal(1)) is True
    assert [r.action_id for r in await answers.refusals("q-other")] == ["a1"]


async def test_an_sms_reply_finds_the_newest_open_question(store: Store) -> None:  # noqa: F811
    answers, key = store.answers, phone_key(PHONE)
    assert await answers.open_sms_question(key, NOW) is None
    await answers.record_sms_question(key, "q-old", "ada", ["yes", "no"], NOW + timedelta(hours=2))
    await answers.record_sms_question(key, "q-new", "ada", ["approve", "deny"], NOW + timedelta(hours=2))
    await answers.record_sms_question(key, "q-new", "ada", ["other"], NOW + timedelta(hours=2))  # a retried send
    await answers.record_sms_question(phone_key("+14155550999"), "q-bob", "bob", ["x"], NOW + timedelta(hours=2))
    assert await answers.open_sms_question(key, NOW) == SmsQuestion("q-new", "ada", ["approve", "deny"])

    # Once its notification finished (its outcome is recorded), a question no longer takes replies.
    await store.notifications.record_outcome(
        NotificationOutcome(
            notification_id="q-new",
            workflow_id="notification/q-new",
            agent_id="deploy-agent",
            user_id="ada",
            priority=Priority.high,
            status=NotificationStatus.answered,
        )
    )
    assert await answers.open_sms_question(key, NOW) == SmsQuestion("q-old", "ada", ["yes", "no"])
    # Nor once it expired.
    assert await answers.open_sms_question(key, NOW + timedelta(hours=2)) is None


async def test_snoozes_mute_until_they_end(store: Store) -> None:  # noqa: F811
    answers = store.answers
    scopes = ["rule:checkout-errors", "agent:checkout-agent"]
    assert await answers.snoozed_until("ada", scopes, NOW) is None
    until = NOW + timedelta(hours=1)
    await answers.put_snooze(Snooze(user_id="ada", scope="rule:checkout-errors", until=until))
    assert await answers.snoozed_until("ada", scopes, NOW) == until
    assert await answers.snoozed_until("bob", scopes, NOW) is None
    assert await answers.snoozed_until("ada", ["rule:other"], NOW) is None
    assert await answers.snoozed_until("ada", scopes, until) is None
    # Snoozing again moves the end.
    later = NOW + timedelta(hours=3)
    await answers.put_snooze(Snooze(user_id="ada", scope="rule:checkout-errors", until=later))
    assert await answers.snoozed_until("ada", scopes, NOW) == later


async def test_preferences_and_snooze_come_in_one_read(store: Store) -> None:  # noqa: F811
    answers = store.answers
    scopes = ["rule:checkout-errors", "agent:checkout-agent"]
    assert await answers.preferences_and_snooze("ada", scopes, NOW) == (Preferences(), None)
    muted = Preferences.model_validate({"default": {"sms": False}})
    await store.users.put_preferences("ada", muted)
    until = NOW + timedelta(hours=1)
    await answers.put_snooze(Snooze(user_id="ada", scope="agent:checkout-agent", until=until))
    assert await answers.preferences_and_snooze("ada", scopes, NOW) == (muted, until)
    # Without scopes (critical gets through a snooze) the snooze is not looked up.
    assert await answers.preferences_and_snooze("ada", None, NOW) == (muted, None)
    assert await answers.preferences_and_snooze("ada", scopes, until) == (muted, None)


async def test_expired_entries_are_purged(store: Store) -> None:  # noqa: F811
    answers = store.answers
    await answers.use_link("old", "q1", (NOW - timedelta(minutes=1)).timestamp())
    await answers.use_link("live", "q1", (NOW + timedelta(minutes=1)).timestamp())
    await answers.record_sms_question(phone_key(PHONE), "q1", "ada", ["a"], NOW - timedelta(minutes=1))
    await answers.put_snooze(Snooze(user_id="ada", scope="agent:a", until=NOW - timedelta(minutes=1)))
    assert await answers.purge_expired(NOW) == 3
    assert await answers.use_link("live", "q1", NOW.timestamp()) is False
