"""The digest email's content: grouped by agent, newest first, with counts, and always one email's size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from herald.domain.digest import DIGEST_AGENT, digest_body, digest_item, digest_notification, digest_title
from herald.models import BODY_MAX_BYTES, AgentNotification, ChannelName, DigestItem, Priority

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def item(n: int, agent: str = "coder", minutes: int = 0, body: str = "") -> DigestItem:
    return DigestItem(
        notification_id=f"n{n}",
        agent_id=agent,
        title=f"item {n}",
        body=body,
        priority=Priority.low,
        created_at=T0 + timedelta(minutes=minutes),
    )


def test_groups_by_agent_busiest_first_and_newest_first() -> None:
    items = [item(1, "coder", 0), item(2, "monitor", 5), item(3, "coder", 10), item(4, "coder", 20)]
    body = digest_body(items)
    assert body.index("coder (3)") < body.index("monitor (1)")
    coder = body[body.index("coder (3)") : body.index("monitor (1)")]
    assert coder.index("item 4") < coder.index("item 3") < coder.index("item 1")
    assert "[low] item 2 (2026-11-21 09:05 UTC)" in body
    assert digest_title(items) == "Your digest: 4 notifications from 2 agents"
    assert digest_title(items[:1]) == "Your digest: 1 notification from 1 agent"


def test_long_bodies_are_shortened_and_the_whole_fits_one_email() -> None:
    one = digest_body([item(1, body="word " * 200)])
    assert "…" in one and len(one) < 500
    many = [item(i, f"agent-{i % 7}", i, body="x" * 250) for i in range(400)]
    body = digest_body(many)
    assert len(body.encode()) <= BODY_MAX_BYTES
    assert body.endswith("cut to fit one email")


def test_digest_notification_is_one_medium_email() -> None:
    n = AgentNotification(agent_id="coder", user_id="ada", title="Build done", body="ok", priority=Priority.low)
    digest = digest_notification("ada", "digest-abc", [digest_item(n)], T0)
    assert (digest.notification_id, digest.agent_id, digest.user_id) == ("digest-abc", DIGEST_AGENT, "ada")
    assert digest.channels == [ChannelName.email] and digest.priority is Priority.medium
    assert "Build done" in digest.body and digest.created_at == T0
