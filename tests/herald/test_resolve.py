"""The pure side of resolving: the key Temporal finds notifications by, which are open, what the reply says."""

from __future__ import annotations

from datetime import UTC, datetime

from herald.domain import resolve, search
from herald.models import AgentNotification, NotificationOutcome, NotificationStatus, Resolution


def outcome(**fields: object) -> NotificationOutcome:
    values: dict[str, object] = {
        "notification_id": "n1",
        "workflow_id": "notification/n1",
        "agent_id": "disk-agent",
        "user_id": "ada",
        "priority": "high",
    }
    values.update(fields)
    return NotificationOutcome.model_validate(values)


def test_the_resolve_key_is_a_hash_scoped_to_the_agent_and_not_the_user() -> None:
    key = resolve.resolve_key("disk-agent", "disk-full/db-1")
    assert len(key) == 64 and "disk-full" not in key
    assert key != resolve.resolve_key("other-agent", "disk-full/db-1")
    assert key != resolve.resolve_key("disk-agent", "disk-full/db-2")


def test_a_notification_is_found_by_its_resolve_key_only_with_a_dedup_key() -> None:
    keyed = AgentNotification(agent_id="disk-agent", user_id="ada", title="Disk", dedup_key="disk-full/db-1")
    [pair] = list(search.resolve_attributes(keyed))
    assert pair.key == search.RESOLVE_KEY and pair.value == resolve.resolve_key("disk-agent", "disk-full/db-1")
    assert list(search.resolve_attributes(keyed.model_copy(update={"dedup_key": None}))) == []
    names = {p.key.name for p in search.start_attributes(keyed)}
    assert names == {"HeraldAgentId", "HeraldUserId", "HeraldPriority", "HeraldStatus", "HeraldResolveKey"}


def test_the_query_asks_for_running_notifications_of_the_agent_and_key() -> None:
    query = resolve.open_query("disk-agent", "disk-full/db-1")
    assert "ExecutionStatus = 'Running'" in query and "WorkflowType = 'NotificationWorkflow'" in query
    assert "HeraldAgentId = 'disk-agent'" in query
    assert f"HeraldResolveKey = '{resolve.resolve_key('disk-agent', 'disk-full/db-1')}'" in query
    assert "disk-full/db-1" not in query


def test_only_a_pending_notification_not_recording_its_outcome_is_open() -> None:
    assert resolve.not_open(outcome(), closing=False) is None
    assert resolve.not_open(outcome(), closing=True) == "not open: it has ended (pending)"
    for status in (NotificationStatus.answered, NotificationStatus.delivered, NotificationStatus.digested):
        assert resolve.not_open(outcome(status=status), closing=False) == f"not open: it has ended ({status.value})"
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    done = outcome(resolved=Resolution(by="agent:disk-agent", at=at))
    assert resolve.not_open(done, closing=False) == "already resolved by agent:disk-agent at 2026-11-20T09:00:00+00:00"


def test_the_message_says_how_many_or_that_nothing_was_open() -> None:
    assert resolve.resolved_message("disk-agent", 0).startswith("nothing to resolve: disk-agent has no open")
    assert resolve.resolved_message("disk-agent", 1) == "resolved 1 open notification of disk-agent"
    assert resolve.resolved_message("disk-agent", 3) == "resolved 3 open notifications of disk-agent"


def test_the_frame_names_only_the_notification() -> None:
    assert resolve.resolved_frame("n1") == {"type": "resolved", "notification_id": "n1"}


def test_current_details_say_who_resolved_and_what_stopped() -> None:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    resolved = outcome(
        status=NotificationStatus.resolved,
        resolved=Resolution(by="admin", at=at),
        channels={"webhook": {"channel": "webhook", "status": "stopped", "attempt_count": 1}},
    )
    assert search.current_details(resolved) == (
        "**resolved**\nresolved by admin at 2026-11-20T09:00:00+00:00\n- webhook: stopped by the resolve (1 attempt)"
    )
