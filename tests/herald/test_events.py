"""Planning an event's firings and the monitor's cooldown bookkeeping, without Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from herald.domain.dedup import content_key
from herald.domain.events import (
    MONITOR_LINGER,
    REMEMBERED_MAX,
    RESOLVE_MEMORY,
    clearing_rules,
    clearing_scope,
    cooldown_scope,
    cooling,
    in_plan_order,
    notification_id_for,
    plan_firings,
    pruned,
    quiet_at,
    record_firing,
    remember_firing,
    split_by_cooldown,
    take_resolvable,
    undo_firing,
)
from herald.domain.rules import RuleBook
from herald.models import (
    AgentEvent,
    ChannelName,
    Clearing,
    FiredRule,
    Firing,
    MonitorState,
    Priority,
    TriggerRule,
)

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


def test_a_rule_naming_groups_plans_one_group_notification_each() -> None:
    with_groups = firing(users=("ada",)).model_copy(update={"groups": ["sre"]})
    [plan] = plan_firings("checkout", "evt-1", [with_groups], NOW)
    ada, sre = plan.notifications
    assert (ada.user_id, ada.group) == ("ada", None) and (sre.user_id, sre.group) == (None, "sre")
    assert sre.notification_id == notification_id_for("checkout", "evt-1", "high-errors", "group:sre")
    assert sre.dedup_key == f"firing/{sre.notification_id}" and sre.title == ada.title


def test_a_rule_names_users_or_groups() -> None:
    assert TriggerRule(name="r", condition="true", groups=["sre"]).user_ids == []
    with pytest.raises(ValidationError) as refused:
        TriggerRule(name="r", condition="true")
    [error] = refused.value.errors()
    assert error["loc"] == ("user_ids",) and "at least one user (or give groups)" in error["msg"]


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


# --- rules with `resolve: true` ---------------------------------------------------------------------------------


def resolving_rule(**fields: object) -> TriggerRule:
    values: dict[str, object] = {
        "name": "disk-full",
        "agent_id": "disk-agent",
        "condition": "disk_used > 0.9",
        "user_ids": ["ada"],
        "dedup_key": "{{ host }}",
        "resolve": True,
    }
    values.update(fields)
    return TriggerRule.model_validate(values)


def event(**metrics: object) -> AgentEvent:
    return AgentEvent.model_validate({"agent_id": "disk-agent", "metrics": metrics})


def test_an_event_clears_a_resolving_rule_only_when_it_holds_the_metrics_and_makes_it_false() -> None:
    book = RuleBook([resolving_rule(), resolving_rule(name="no-resolve", resolve=False)])
    assert clearing_rules(book, event(disk_used=0.5, host="db-1")) == [Clearing(rule="disk-full", cooldown_key="db-1")]
    assert clearing_rules(book, event(heartbeat=1)) == [], "an event about something else clears nothing"
    assert clearing_rules(book, event(disk_used=0.95, host="db-1")) == [], "still true: it fires, it doesn't clear"
    assert clearing_rules(book, event(disk_used="full")) == [], "an error is not false"
    assert clearing_rules(book, event(disk_used=0.5)) == [Clearing(rule="disk-full")], "no key rendered: the rule"


def test_a_resolving_rule_goes_to_the_monitor_even_without_a_cooldown() -> None:
    plain, resolving = firing("plain", cooldown=0), firing("resolving", cooldown=0).model_copy(update={"resolve": True})
    monitored, direct = split_by_cooldown(plan_firings("disk-agent", "evt-1", [plain, resolving], NOW))
    assert [p.rule for p in monitored] == ["resolving"] and monitored[0].resolve
    assert [p.rule for p in direct] == ["plain"]


def test_the_monitor_remembers_what_a_resolving_rule_fired_until_a_clearing_event_or_the_memory_ends() -> None:
    state = MonitorState(agent_id="disk-agent")
    remember_firing(state, "disk-full/db-1", ["n1", "n2"], NOW)
    remember_firing(state, "disk-full/db-1", ["n2", "n3"], NOW + timedelta(minutes=1))
    assert quiet_at(state) == NOW + timedelta(minutes=1) + RESOLVE_MEMORY, "the monitor stays while it remembers"
    assert take_resolvable(state, clearing_scope(Clearing(rule="disk-full", cooldown_key="db-2")), NOW) == []
    assert take_resolvable(state, clearing_scope(Clearing(rule="disk-full", cooldown_key="db-1")), NOW) == [
        "n1",
        "n2",
        "n3",
    ]
    assert take_resolvable(state, "disk-full/db-1", NOW) == [], "taken once"

    remember_firing(state, "disk-full", ["n4"], NOW)
    later = NOW + RESOLVE_MEMORY + timedelta(seconds=1)
    assert pruned(state, later).resolvable == {}
    assert take_resolvable(state, "disk-full", later) == [], "past the memory: ended long since"
    many = MonitorState(agent_id="disk-agent")
    remember_firing(many, "s", [f"n{i}" for i in range(REMEMBERED_MAX + 5)], NOW)
    assert len(many.resolvable["s"].notification_ids) == REMEMBERED_MAX
