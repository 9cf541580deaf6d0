"""Planning an event's firings and the monitor's cooldown bookkeeping, without Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from herald.domain.dedup import content_key
from herald.domain.events import (
    MONITOR_LINGER,
    cooldown_scope,
    cooling,
    in_plan_order,
    notification_id_for,
    plan_firings,
    pruned,
    quiet_at,
    record_firing,
    split_by_cooldown,
    undo_firing,
)
from herald.models import ChannelName, FiredRule, Firing, MonitorState, Priority

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def firing(rule: str = "high-errors", users: tuple[str, ...] = ("ada", "bo"), cooldown: int = 300) -> Firing:
    return Firing(
        rule=rule,
        cooldown_seconds=cooldown,
        user_ids=list(users),
        channels=[ChannelName.email],
        priority=Priority.high,
        title="Error rate 0.07 on checkout",
        body="p95 1.2 s",
        dedup_key="checkout-errors",
        metadata={"rule": rule},
    )


def test_plan_makes_one_notification_per_user_with_stable_ids() -> None:
    [plan] = plan_firings("checkout", "evt-1", [firing()], NOW)
    assert (plan.rule, plan.cooldown_seconds) == ("high-errors", 300)
    assert [n.user_id for n in plan.notifications] == ["ada", "bo"]
    first = plan.notifications[0]
    assert first.agent_id == "checkout" and first.title == "Error rate 0.07 on checkout"
    assert first.priority is Priority.high and first.channels == [ChannelName.email]
    assert first.created_at == NOW
    # Each notification dedups per firing; the rule's rendered dedup_key scopes its cooldown instead.
    assert first.dedup_key == f"firing/{first.notification_id}"
    assert plan.cooldown_key == "checkout-errors"
    # The same event plans the same ids; another event, rule or user plans others.
    again = plan_firings("checkout", "evt-1", [firing()], NOW + timedelta(seconds=5))[0]
    assert [n.notification_id for n in again.notifications] == [n.notification_id for n in plan.notifications]
    ids = {
        notification_id_for("checkout", "evt-1", "high-errors", "ada"),
        notification_id_for("checkout", "evt-2", "high-errors", "ada"),
        notification_id_for("checkout", "evt-1", "other", "ada"),
        notification_id_for("checkout", "evt-1", "high-errors", "bo"),
        notification_id_for("billing", "evt-1", "high-errors", "ada"),  # event ids are each agent's own
    }
    assert len(ids) == 5
    other_agent = plan_firings("billing", "evt-1", [firing()], NOW)[0]
    assert {n.notification_id for n in other_agent.notifications}.isdisjoint(
        n.notification_id for n in plan.notifications
    )


def test_only_rules_with_a_cooldown_need_the_monitor() -> None:
    plans = plan_firings(
        "checkout",
        "evt-1",
        [firing("a", cooldown=300), firing("b", cooldown=0), firing("c", cooldown=1), firing("d", cooldown=0)],
        NOW,
    )
    monitored, direct = split_by_cooldown(plans)
    assert [p.rule for p in monitored] == ["a", "c"]
    assert [p.rule for p in direct] == ["b", "d"]
    assert split_by_cooldown([]) == ([], [])
    assert split_by_cooldown(plans[1::2]) == ([], plans[1::2]), "no cooldown anywhere: nothing for a monitor"


def test_both_routes_firings_come_back_in_the_rules_order() -> None:
    plans = plan_firings("checkout", "evt-1", [firing("a"), firing("b", cooldown=0), firing("c")], NOW)

    def fired(rule: str) -> FiredRule:
        return FiredRule(rule=rule, notification_ids=[f"{rule}-1"])

    # The client's own starts first, then the monitor's (which held `a` back): still the rules' order.
    assert [f.rule for f in in_plan_order(plans, [fired("b"), fired("c")])] == ["b", "c"]
    assert [f.rule for f in in_plan_order(plans, [fired("b"), fired("a"), fired("c")])] == ["a", "b", "c"]
    assert in_plan_order(plans, []) == []


def test_cooldown_holds_until_it_ends() -> None:
    state = MonitorState(agent_id="checkout")
    assert cooling(state, "r", NOW) is None
    record_firing(state, "r", 60, NOW)
    assert cooling(state, "r", NOW) == NOW + timedelta(seconds=60)
    assert cooling(state, "r", NOW + timedelta(seconds=59)) == NOW + timedelta(seconds=60)
    assert cooling(state, "r", NOW + timedelta(seconds=60)) is None
    assert cooling(state, "other", NOW) is None
    record_firing(state, "zero", 0, NOW)
    assert cooling(state, "zero", NOW) is None, "a zero cooldown never holds"


def test_pruned_state_keeps_only_running_cooldowns() -> None:
    state = MonitorState(agent_id="a")
    record_firing(state, "short", 10, NOW)
    record_firing(state, "long", 600, NOW)
    later = pruned(state, NOW + timedelta(seconds=30))
    assert list(later.cooling_until) == ["long"]
    assert list(state.cooling_until) == ["short", "long"], "the original is untouched"


def test_quiet_after_cooldowns_and_the_linger() -> None:
    state = MonitorState(agent_id="a")
    assert quiet_at(state) is None
    state.last_event_at = NOW
    assert quiet_at(state) == NOW + MONITOR_LINGER
    record_firing(state, "long", 3600, NOW)
    assert quiet_at(state) == NOW + timedelta(seconds=3600)


def test_a_rules_notifications_never_share_a_content_key_across_firings() -> None:
    """They used to: two firings of a rule had the same title (or rendered dedup_key), so a firing its cooldown
    let through was suppressed as a duplicate of the last one by the 300 s content window."""
    first = plan_firings("checkout", "evt-1", [firing()], NOW)[0].notifications[0]
    later = plan_firings("checkout", "evt-2", [firing()], NOW + timedelta(seconds=5))[0].notifications[0]
    assert first.title == later.title
    assert content_key(first) != content_key(later)
    retried = plan_firings("checkout", "evt-1", [firing()], NOW + timedelta(seconds=5))[0].notifications[0]
    assert content_key(retried) == content_key(first), "a retried event is the same notification"


def test_a_dedup_key_scopes_the_rules_cooldown() -> None:
    keyed = plan_firings("checkout", "evt-1", [firing()], NOW)[0]
    plain = plan_firings("checkout", "evt-1", [firing().model_copy(update={"dedup_key": None})], NOW)[0]
    assert cooldown_scope(plain) == "high-errors"
    assert cooldown_scope(keyed) == "high-errors/checkout-errors"
    state = MonitorState(agent_id="checkout")
    record_firing(state, cooldown_scope(keyed), 300, NOW)
    assert cooling(state, cooldown_scope(keyed), NOW) is not None
    assert cooling(state, cooldown_scope(plain), NOW) is None, "another key (or none) of the rule is not held"


def test_undo_firing_restores_the_cooldown_unless_another_firing_moved_it() -> None:
    state = MonitorState(agent_id="a")
    record_firing(state, "r", 10, NOW)
    undo_firing(state, "r", 10, NOW, None)
    assert "r" not in state.cooling_until
    earlier = NOW - timedelta(seconds=3)
    state.cooling_until["r"] = earlier
    record_firing(state, "r", 10, NOW)
    undo_firing(state, "r", 10, NOW, earlier)
    assert state.cooling_until["r"] == earlier
    record_firing(state, "r", 10, NOW)
    record_firing(state, "r", 10, NOW + timedelta(seconds=1))  # a later firing
    undo_firing(state, "r", 10, NOW, earlier)
    assert state.cooling_until["r"] == NOW + timedelta(seconds=11)
