"""The pure side of resolving: the key Temporal finds notifications by, which are open, what the reply says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from herald.domain import resolve, routing, search
from herald.models import (
    TITLE_MAX_CHARS,
    AgentNotification,
    ChannelName,
    ChannelResult,
    DeliveryRequest,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
    Resolution,
    ResolvedNotice,
)


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


# --- what a resolve updates, by channel (resolve_plan) and by preference (notify_resolved) ----------------------


def delivered(channel: str, provider_message_id: str | None = "id-1", status: str = "delivered") -> dict[str, object]:
    return {"channel": channel, "status": status, "provider_message_id": provider_message_id}


def channels(*results: dict[str, object]) -> dict[ChannelName, ChannelResult]:
    return {ChannelName(str(r["channel"])): ChannelResult.model_validate(r) for r in results}


def test_web_push_is_replaced_and_a_live_frame_is_not_a_web_push() -> None:
    by_webpush = channels(delivered("push", "http://push.example/m/1"))
    assert resolve.resolve_plan(by_webpush, notify_resolved=False).replace_push
    assert resolve.resolve_plan(channels(delivered("push", "webpush:1/2")), notify_resolved=False).replace_push
    by_socket = channels(delivered("push", f"{resolve.LIVE_PUSH_PREFIX}conn-7"))
    assert not resolve.resolve_plan(by_socket, notify_resolved=True).replace_push
    failed = channels(delivered("push", None, status="failed"))
    assert not resolve.resolve_plan(failed, notify_resolved=True).replace_push


def test_chats_are_edited_whatever_the_preference_and_only_where_delivered() -> None:
    results = channels(delivered("slack"), delivered("telegram"), delivered("chat"))
    for notify in (True, False):
        assert resolve.resolve_plan(results, notify).edit == [ChannelName.slack, ChannelName.telegram]
    stopped = channels(delivered("slack", status="stopped"))
    assert resolve.resolve_plan(stopped, True).edit == []


def test_email_and_sms_are_told_only_when_the_preference_allows_and_only_where_delivered() -> None:
    results = channels(delivered("email"), delivered("sms"), delivered("webhook"), delivered("push", "ws:c1"))
    assert resolve.resolve_plan(results, notify_resolved=True).tell == [ChannelName.email, ChannelName.sms]
    assert resolve.resolve_plan(results, notify_resolved=False).tell == []
    only_failed_sms = channels(delivered("email"), delivered("sms", status="failed"))
    assert resolve.resolve_plan(only_failed_sms, notify_resolved=True).tell == [ChannelName.email]
    assert resolve.resolve_plan({}, notify_resolved=True) == resolve.ResolvePlan()


def test_notify_resolved_defaults_to_high_and_critical_and_the_agent_entry_wins() -> None:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def told(preferences: dict[str, object], priority: Priority, agent: str = "disk-agent") -> bool:
        prefs = Preferences.model_validate(preferences)
        return routing.route_for(agent, priority, [ChannelName.email], prefs, at).notify_resolved

    assert [told({}, p) for p in Priority] == [False, False, True, True]
    assert [told({"default": {"notify_resolved": "low"}}, p) for p in Priority] == [True, True, True, True]
    assert [told({"default": {"notify_resolved": False}}, p) for p in Priority] == [False] * 4
    overridden = {"default": {"notify_resolved": False}, "agents": {"disk-agent": {"notify_resolved": "critical"}}}
    assert [told(overridden, p) for p in Priority] == [False, False, False, True]
    assert [told(overridden, p, agent="other") for p in Priority] == [False] * 4
    assert resolve.tells_resolved(None, Priority.critical) is False


def test_notify_resolved_refuses_anything_but_false_or_a_priority_naming_the_field() -> None:
    for bad in (True, "urgent", 3, {"min_priority": "high"}):
        with pytest.raises(ValidationError) as caught:
            Preferences.model_validate({"default": {"notify_resolved": bad}})
        [error] = caught.value.errors()
        assert error["loc"] == ("default", "notify_resolved"), error
        assert "must be false or a priority" in error["msg"]
    saved = Preferences.model_validate(
        {"default": {"notify_resolved": False}, "agents": {"a": {"notify_resolved": "low"}}}
    )
    assert saved.model_dump(exclude_none=True)["default"] == {"notify_resolved": False}


def test_the_resolved_message_is_short_and_keeps_the_notifications_id() -> None:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    notice = ResolvedNotice(
        notification_id="n1",
        workflow_id="notification/n1",
        user_id="ada",
        agent_id="disk-agent",
        priority=Priority.high,
        title="Disk 95% on db-1",
        by="agent:disk-agent",
        at=at,
    )
    message = resolve.resolved_notification(notice)
    assert (message.notification_id, message.user_id, message.priority) == ("n1", "ada", Priority.high)
    assert message.title == "Resolved: Disk 95% on db-1" and message.actions == []
    assert message.body == "No longer needs your attention: resolved by agent:disk-agent."
    long = resolve.resolved_notification(notice.model_copy(update={"title": "x" * TITLE_MAX_CHARS}))
    assert len(long.title) == TITLE_MAX_CHARS and long.title.endswith("…")
    request = DeliveryRequest(notification=message, channel=ChannelName.email, workflow_id="notification/n1")
    assert request.idempotency_key == "notification/n1/email"
    assert request.model_copy(update={"resolved": True}).idempotency_key == "notification/n1/email/resolved"


def test_the_ended_query_asks_for_completed_notifications_that_ended_delivered() -> None:
    query = resolve.ended_query("disk-agent", "disk-full/db-1")
    assert "ExecutionStatus = 'Completed'" in query and "WorkflowType = 'NotificationWorkflow'" in query
    assert "HeraldAgentId = 'disk-agent'" in query
    assert f"HeraldResolveKey = '{resolve.resolve_key('disk-agent', 'disk-full/db-1')}'" in query
    assert "HeraldStatus IN ('delivered', 'partially_delivered', 'confirmed', 'unconfirmed')" in query
    assert "disk-full/db-1" not in query
    assert resolve.resolve_ended_id("n1") == "resolve/n1"


@pytest.mark.parametrize("status", list(NotificationStatus))
def test_an_ended_notification_is_open_only_when_it_ended_delivered_and_is_not_resolved(
    status: NotificationStatus,
) -> None:
    reason = resolve.ended_not_open(outcome(status=status))
    if status in resolve.ENDED_OPEN:
        assert reason is None
    else:
        assert reason == f"not open: it has ended ({status.value})"
    by = Resolution(by="agent:disk-agent", at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    already = resolve.ended_not_open(outcome(status=NotificationStatus.delivered, resolved=by))
    assert already == "already resolved by agent:disk-agent at 2026-01-02T03:04:00+00:00"
    assert resolve.ended_not_open(None) == "not open: no outcome recorded (past the store's retention)"


def test_a_question_that_ended_answered_or_expired_is_closed_not_open() -> None:
    assert NotificationStatus.answered not in resolve.ENDED_OPEN
    assert NotificationStatus.expired not in resolve.ENDED_OPEN


def test_an_ended_notification_resolves_as_recorded_and_its_notice_comes_from_the_outcome() -> None:
    results = {
        ChannelName.push: ChannelResult(
            channel=ChannelName.push, status="delivered", provider_message_id="https://p/1"
        ),
        ChannelName.email: ChannelResult(channel=ChannelName.email, status="delivered"),
        ChannelName.sms: ChannelResult(channel=ChannelName.sms, status="failed"),
    }
    ended = outcome(status=NotificationStatus.delivered, channels=results)
    by = Resolution(by="admin", at=datetime(2026, 1, 2, tzinfo=UTC))
    resolved = resolve.resolved_outcome(ended, by)
    assert resolved.status is NotificationStatus.resolved and resolved.resolved == by
    assert resolved.channels == ended.channels, "what each channel did stays"
    assert ended.status is NotificationStatus.delivered, "the recorded outcome is copied, not changed"

    plan = resolve.resolve_plan(resolved.channels, notify_resolved=True)
    notice = resolve.ended_notice(resolved, "Disk 95%", plan)
    assert (notice.notification_id, notice.workflow_id, notice.user_id, notice.agent_id) == (
        "n1",
        "notification/n1",
        "ada",
        "disk-agent",
    )
    assert (notice.title, notice.by, notice.at, notice.priority) == ("Disk 95%", "admin", by.at, Priority.high)
    assert notice.replace_push and notice.tell == [ChannelName.email]
    assert notice.delivered == [ChannelName.push, ChannelName.email]
    assert resolve.ended_notice(resolved, "", plan).title == "n1", "no kept title: the id stands in"
