"""Trigger rules: CEL conditions, missing metrics, templates in the sandbox, the rule book, cooldowns."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import cel
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from herald.domain.rules import CompiledRule, RuleBook, RuleProblem, compile_rule
from herald.models import (
    BODY_MAX_BYTES,
    DEDUP_KEY_MAX_CHARS,
    METADATA_MAX_BYTES,
    TITLE_MAX_CHARS,
    AgentNotification,
    ChannelName,
    MetricValue,
    Priority,
    TriggerRule,
)


def rule(condition: str = "true", name: str = "r1", **fields: Any) -> TriggerRule:
    return TriggerRule(name=name, condition=condition, user_ids=["u1"], **fields)


def matches(condition: str, metrics: dict[str, MetricValue]) -> bool:
    return compile_rule(rule(condition)).matches(metrics)


def problem(**fields: Any) -> RuleProblem:
    with pytest.raises(RuleProblem) as caught:
        compile_rule(rule(**fields))
    return caught.value


# --- conditions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "metrics", "expected"),
    [
        ("error_rate > 0.05", {"error_rate": 0.07}, True),
        ("error_rate > 0.05", {"error_rate": 0.05}, False),
        ("error_rate > 0.05", {"error_rate": 1}, True),  # an int metric against a float threshold
        ("error_rate > 0.05", {"error_rate": 0}, False),
        ("count > 10", {"count": 10.5}, True),  # a float metric against an int threshold
        ("count == 3", {"count": 3.0}, True),
        ("completed == 1", {"completed": 1}, True),
        ("completed == 1", {"completed": 0}, False),
        ("completed == true", {"completed": True}, True),
        ("completed == true", {"completed": False}, False),
        ("ok", {"ok": True}, True),
        ("ok", {"ok": False}, False),
        ("!ok", {"ok": False}, True),
        ("error_rate > 0.05 && latency_ms >= 200", {"error_rate": 0.07, "latency_ms": 200}, True),
        ("error_rate > 0.05 && latency_ms >= 200", {"error_rate": 0.07, "latency_ms": 199}, False),
        ("error_rate > 0.05 && latency_ms >= 200", {"error_rate": 0.01, "latency_ms": 500}, False),
        ('status in ["failed", "timeout"]', {"status": "timeout"}, True),
        ('status in ["failed", "timeout"]', {"status": "ok"}, False),
        ('status == "failed"', {"status": "failed"}, True),
        ('status != "failed"', {"status": "ok"}, True),
        ('model.startsWith("gpt-")', {"model": "gpt-4o"}, True),
        ('region < "m"', {"region": "eu-west"}, True),
        ("size(status) > 3", {"status": "failed"}, True),
        ("has(cost_usd) && cost_usd > 10", {"cost_usd": 12.5}, True),
        ("has(cost_usd) && cost_usd > 10", {"cost_usd": 3}, False),
        ("has(cost_usd) && cost_usd > 10", {"latency_ms": 3}, False),
        ("has( cost_usd )", {"cost_usd": 0}, True),
        ("metrics.cost_usd > 10", {"cost_usd": 11}, True),
        ('metrics["cost_usd"] > 10', {"cost_usd": 11}, True),
        ("has(cost_usd) && metrics.latency_ms > 1", {"cost_usd": 1, "latency_ms": 2}, True),
        ('has(cost_usd) && note == "metrics"', {"cost_usd": 1, "note": "metrics"}, True),
        ("size(metrics) == 2", {"a": 1, "b": 2}, True),
        ("true", {}, True),
    ],
)
def test_condition_forms(condition: str, metrics: dict[str, MetricValue], expected: bool) -> None:
    assert matches(condition, metrics) is expected


@pytest.mark.parametrize(
    "condition",
    ["x > 10", "has(x) && x > 10", "x == 1 && y == 2", "metrics.x > 10", "x", "!x", 'x == "a"', "x in [1, 2]"],
)
def test_a_missing_metric_means_no_firing_not_an_error(condition: str) -> None:
    assert matches(condition, {"y": 2}) is False


def test_missing_metrics_follow_cel_logic() -> None:
    """`||` and `?:` make a missing operand irrelevant when the other side decides, as CEL defines."""
    assert matches("!has(x) || x > 10", {}) is True
    assert matches("!has(x) || x > 10", {"x": 5}) is False
    assert matches("x > 10 || y", {"y": True}) is True
    assert matches("x > 10 || y", {"y": False}) is False
    assert matches("has(x) ? x > 10 : fallback", {"fallback": True}) is True


def test_has_is_rewritten_only_in_code() -> None:
    """`has(x)` inside a string or a comment stays as written."""
    condition = 'note == "has(x)" && has(y) // has(z)'
    assert matches(condition, {"note": "has(x)", "y": 1}) is True
    assert matches(condition, {"note": "has(metrics.x)", "y": 1}) is False
    assert matches("has(y) && r'has(q)' == note", {"y": 1, "note": "has(q)"}) is True
    assert matches("has(y) && '''it's has(q)''' == note", {"y": 1, "note": "it's has(q)"}) is True
    assert matches(r"r'a\' == note && has(y)", {"y": 1, "note": "a\\"}) is True  # a raw string's \ escapes nothing
    assert matches(r"'a\' has(x)' == note && has(y)", {"y": 1, "note": "a' has(x)"}) is True


def test_a_metric_of_the_wrong_type_does_not_fire_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    compiled = compile_rule(rule("latency_ms > 200", name="slow"))
    with caplog.at_level(logging.WARNING, logger="herald.rules"):
        assert compiled.matches({"latency_ms": "secret-value"}) is False
        assert compiled.matches({"latency_ms": "secret-value"}) is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "slow" in warnings[0] and "secret-value" not in warnings[0]


def test_a_non_boolean_result_does_not_fire_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    compiled = compile_rule(rule("latency_ms + 1", name="arith"))
    with caplog.at_level(logging.WARNING, logger="herald.rules"):
        assert compiled.matches({"latency_ms": 5}) is False
    assert ["arith" in r.getMessage() and "not true or false" in r.getMessage() for r in caplog.records] == [True]


@pytest.mark.parametrize(
    ("condition", "kind"), [("1 + 2", "int"), ("0.5", "double"), ('"yes"', "string"), ("[true]", "list"), ("{}", "map")]
)
def test_a_condition_that_can_never_be_boolean_is_refused(condition: str, kind: str) -> None:
    refused = problem(condition=condition)
    assert refused.field == "condition" and f"type {kind}, not true or false" in refused.message


def test_a_condition_that_always_fails_is_refused() -> None:
    assert "always fails" in problem(condition="1 / 0 > 1").message


def test_syntax_error_names_line_column_and_shows_a_caret() -> None:
    refused = problem(condition="error_rate > 0.05 &&\n  (latency_ms >= ")
    assert refused.field == "condition" and refused.rule == "r1"
    assert refused.message.startswith("at line 2, column 18: ")
    assert refused.message.endswith("\n|   (latency_ms >= \n| .................^")
    assert "Failed to parse" not in str(refused)


def test_syntax_error_position_is_in_the_condition_as_written() -> None:
    """The `has()` rewrite adds text before the error; the position still points into what the author wrote."""
    refused = problem(condition="has(a) && has(b) && x >")
    assert refused.message.startswith("at line 1, column 24: ")
    assert refused.message.endswith("\n| has(a) && has(b) && x >\n| .......................^")
    assert "metrics." not in refused.message
    between = "has(a) && 1 + && has(b)"  # the error lies between two rewrites
    column = between.index("+ &&") + 3
    assert problem(condition=between).message.startswith(f"at line 1, column {column}: ")


def test_has_needs_a_metric_name() -> None:
    refused = problem(condition="has(1) && x > 1")
    assert refused.message.startswith("at line 1, column 5: ") and "has()" in refused.message


@pytest.mark.parametrize(
    ("condition", "column"),
    [("lowerAscii(status) == 'a'", 1), ("x > 1 && status.lowerAscii() == 'a'", 17), ("math.greatest(x, 1) > 2", 6)],
)
def test_an_unknown_function_is_refused_with_its_position(condition: str, column: int) -> None:
    refused = problem(condition=condition)
    assert f"column {column}: unknown function" in refused.message


def test_time_functions_are_known() -> None:
    assert matches("timestamp(at).getHours() == 3", {"at": "2024-05-01T03:04:05Z"}) is True
    assert matches('duration(window) > duration("1m")', {"window": "90s"}) is True


def test_int_comparison_with_type_names() -> None:
    assert matches("type(x) == int && x > 1", {"x": 3}) is True
    assert matches("type(x) == int", {"x": 3.5}) is False


def test_comprehension_variables_are_not_metrics() -> None:
    assert matches("[1, 2, 3].all(i, i < limit)", {"limit": 5}) is True
    assert matches("[1, 2].map(i, i * 2) == [2, 4] && ok", {"ok": True}) is True


@given(
    metrics=st.dictionaries(
        st.sampled_from(["x", "y", "z"]),
        st.one_of(
            st.integers(-(2**53), 2**53),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.text(max_size=5),
        ),
    ),
    threshold=st.integers(-100, 100),
)
def test_threshold_matches_iff_present_numeric_and_above(metrics: dict[str, MetricValue], threshold: int) -> None:
    x = metrics.get("x")
    expected = isinstance(x, int | float) and not isinstance(x, bool) and x > threshold
    assert matches(f"x > {threshold}", metrics) is expected
    assert matches(f"has(x) && x > {threshold}", metrics) is expected


CONDITION_PARTS = [*"xy01 .()[]{}!?:'\"\\r/\n<>=+-*%,", "has(", "&&", "||", "'''", "//", "metrics", " in ", ".all(i,"]


@given(st.lists(st.sampled_from(CONDITION_PARTS), min_size=1, max_size=16).map("".join).filter(str.strip))
def test_any_condition_compiles_or_is_refused_and_then_always_answers(condition: str) -> None:
    """Whatever an author types: a RuleProblem, or a rule that answers True or False for any metrics."""
    try:
        compiled = compile_rule(rule(condition))
    except RuleProblem as refused:
        assert refused.field == "condition" and refused.message
        return
    for metrics in ({}, {"x": 1, "y": "a"}, {"x": True, "y": 2.5}):
        assert compiled.matches(metrics) in (True, False)


ORACLE_CONDITIONS = [
    "x > 1 && y < 2",
    "!has(x) || x > 1",
    "(x > 1 || y > 1) && z",
    "!(x > 1 && false)",
    "(x > 1 && false) == false",
    "x > 1 ? y > 1 : true",
    "has(x) && x > 1 && (z || y == 0)",
    "[1, 2].exists(i, i == x) && y >= 0",
    "z && x != y",
]


@given(
    metrics=st.dictionaries(
        st.sampled_from(["x", "y", "z"]), st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from([0.5, 2.5]))
    )
)
def test_skipping_rules_without_their_metrics_changes_no_outcome(metrics: dict[str, MetricValue]) -> None:
    """The rule book skips a rule without executing it when a metric is missing; CEL itself must agree."""
    book = RuleBook(rule(condition, name=f"c{i}") for i, condition in enumerate(ORACLE_CONDITIONS))
    fired = {compiled.rule.condition for compiled in book.matching("a", metrics)}
    for condition in ORACLE_CONDITIONS:
        program = cel.compile(condition.replace("has(x)", "has(metrics.x)"))
        try:
            expected = program.execute({**metrics, "metrics": metrics}) is True
        except Exception:
            expected = False
        assert (condition in fired) is expected, condition


def test_the_skip_uses_only_metrics_the_condition_cannot_do_without() -> None:
    def required(condition: str) -> set[str]:
        return set(compile_rule(rule(condition)).required)

    assert required("error_rate > 0.05 && latency_ms >= 200") == {"error_rate", "latency_ms"}
    assert required("has(cost_usd) && cost_usd > 10") == {"cost_usd"}
    assert required("!has(x) || x > 1") == set()
    assert required("(a || b) && c > 1") == {"c"}
    assert required("type(x) == int") == {"x"}
    assert required("[1].all(i, i < x) && y") == {"y"}
    assert required('s == "a && b || c" && t') == {"s", "t"}


# --- templates ---------------------------------------------------------------------------------------


def test_templates_render_metrics_agent_and_rule() -> None:
    compiled = compile_rule(
        rule(
            "error_rate > 0.05",
            name="high-errors",
            title="Error rate {{ error_rate }} on {{ agent_id }}",
            body="{{ rule }}: {{ metrics | length }} metrics, ok={{ ok }}, p99={{ metrics.latency_ms }}",
            dedup_key="{{ agent_id }}/{{ rule }}",
            channels=[ChannelName.sms],
            priority=Priority.high,
            cooldown_seconds=60,
        )
    )
    metrics: dict[str, MetricValue] = {"error_rate": 0.07, "ok": False, "latency_ms": 250}
    firing = compiled.firing("checkout-agent", metrics)
    assert firing.title == "Error rate 0.07 on checkout-agent"
    assert firing.body == "high-errors: 3 metrics, ok=False, p99=250"
    assert firing.dedup_key == "checkout-agent/high-errors"
    assert (firing.rule, firing.cooldown_seconds, firing.user_ids) == ("high-errors", 60, ["u1"])
    assert (firing.channels, firing.priority) == ([ChannelName.sms], Priority.high)
    assert firing.metadata == {"rule": "high-errors", "metrics": metrics}


def test_a_group_key_template_renders_from_the_event_and_the_plan_carries_it() -> None:
    from herald.domain.events import plan_firings

    compiled = compile_rule(
        rule("true", group_key="checkout/{{ metrics.region }}", group_wait_seconds=5, group_interval_seconds=60)
    )
    firing = compiled.firing("shop", {"region": "eu"})
    assert (firing.group_key, firing.group_wait_seconds, firing.group_interval_seconds) == ("checkout/eu", 5, 60)
    [plan] = plan_firings("shop", "evt-1", [firing], datetime(2026, 11, 21, tzinfo=UTC))
    [n] = plan.notifications
    assert (n.group_key, n.group_wait_seconds, n.group_interval_seconds) == ("checkout/eu", 5, 60)


def test_a_rule_naming_an_escalation_policy_fires_notifications_that_escalate_along_it() -> None:
    from herald.domain.events import plan_firings

    firing = compile_rule(rule("true", escalation_policy="db-oncall")).firing("shop", {})
    [plan] = plan_firings("shop", "evt-1", [firing], datetime(2026, 11, 21, tzinfo=UTC))
    [n] = plan.notifications
    assert n.escalation_policy == "db-oncall"
    [plain] = plan_firings(
        "shop", "evt-2", [compile_rule(rule("true")).firing("shop", {})], datetime(2026, 11, 21, tzinfo=UTC)
    )
    assert plain.notifications[0].escalation_policy is None
    assert "escalation_policy" not in plain.notifications[0].model_dump(), "a notification without one reads as before"


def test_a_group_key_rendering_empty_is_no_group_and_a_rendered_one_is_always_valid() -> None:
    compiled = compile_rule(rule("true", group_key="{{ region }}"))
    assert compiled.firing("shop", {}).group_key is None
    assert compile_rule(rule("true")).firing("shop", {"region": "eu"}).group_key is None
    messy = compiled.firing("shop", {"region": "  eu\n\x00west\t" + "x" * 300})
    assert messy.group_key is not None and messy.group_key.startswith("eu west")
    assert len(messy.group_key) == 200
    from herald.models import AgentNotification

    AgentNotification(agent_id="a", user_id="u", title="t", group_key=messy.group_key)  # valid as rendered


def test_a_rules_group_fields_are_bounded() -> None:
    with pytest.raises(ValueError, match="group_wait_seconds"):
        rule("true", group_wait_seconds=3601)
    with pytest.raises(ValueError, match="group_interval_seconds"):
        rule("true", group_interval_seconds=0)


def test_the_default_title_names_rule_and_agent() -> None:
    assert compile_rule(rule(name="any")).firing("a1", {}).title == "any fired for a1"


def test_templates_are_plain_text() -> None:
    firing = compile_rule(rule(title="<b>{{ s }}</b> & co")).firing("a1", {"s": "<i>"})
    assert firing.title == "<b><i></b> & co"


def test_a_missing_metric_renders_empty() -> None:
    firing = compile_rule(rule(title="cost {{ cost_usd }}!", body="[{{ metrics.cost_usd }}][{{ x.y.z }}]")).firing(
        "a", {}
    )
    assert (firing.title, firing.body) == ("cost !", "[][]")


def test_a_template_failing_on_an_event_falls_back_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    compiled = compile_rule(rule(name="frail", title="{{ x + 1 }}", body="{{ 1 / x }}", dedup_key="{{ x.upper() }}"))
    with caplog.at_level(logging.WARNING, logger="herald.rules"):
        firing = compiled.firing("a1", {"x": 0})
    assert (firing.title, firing.body, firing.dedup_key) == ("1", "", None)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("frail" in m for m in messages)
    assert {m.split()[2] for m in messages} == {"body", "dedup_key"}
    assert compiled.firing("a1", {}).title == "frail fired for a1"  # `x` undefined: the title fails too


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ metrics.__class__ }}",
        "{{ metrics['__class__'] }}",
        "ok\n{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_templates_cannot_name_python_internals(template: str) -> None:
    refused = problem(title=template)
    assert refused.field == "title" and "names starting with _" in refused.message
    assert refused.message.startswith(f"at line {template.count(chr(10)) + 1}: ")


def test_the_sandbox_renders_internals_reached_indirectly_as_nothing() -> None:
    compiled = compile_rule(
        rule(title="x{{ metrics | attr('__class__') }}{{ '' | attr('__class__') | attr('__mro__') }}")
    )
    assert compiled.firing("a", {}).title == "x"


def test_a_sandbox_violation_at_render_time_falls_back() -> None:
    compiled = compile_rule(rule(name="sneaky", title="{{ (metrics | attr('__class__')).mro() }}"))
    assert compiled.firing("a", {}).title == "sneaky fired for a"


def test_templates_cannot_include_other_templates() -> None:
    refused = problem(body="{% include 'secrets.txt' %}")
    assert refused.field == "body" and "cannot include" in refused.message


@pytest.mark.parametrize(
    ("fields", "field", "line"),
    [
        ({"title": "Error rate {{ error_rate "}, "title", 1),
        ({"body": "line one\n{% if %}x{% endif %}"}, "body", 2),
        ({"dedup_key": "a\nb\n{% for x in y %}"}, "dedup_key", 3),
    ],
)
def test_template_syntax_errors_name_field_and_line(fields: dict[str, str], field: str, line: int) -> None:
    refused = problem(**fields)
    assert refused.field == field and refused.message.startswith(f"at line {line}: ")
    assert str(refused).startswith(f"rule r1: {field} at line {line}: ")


def test_rendered_fields_are_cut_to_the_notification_limits() -> None:
    compiled = compile_rule(
        rule(title="{{ t * 300 }}", body="a{% for i in range(6000) %}é{% endfor %}", dedup_key="{{ 'k' * 300 }}")
    )
    firing = compiled.firing("a", {"t": "x"})
    assert len(firing.title) == TITLE_MAX_CHARS
    assert len(firing.body.encode()) <= BODY_MAX_BYTES and firing.body == "a" + "é" * (BODY_MAX_BYTES // 2 - 1)
    assert firing.dedup_key == "k" * DEDUP_KEY_MAX_CHARS
    AgentNotification(
        agent_id="a",
        user_id="u1",
        title=firing.title,
        body=firing.body,
        dedup_key=firing.dedup_key,
        metadata=firing.metadata,
    )


def test_an_empty_dedup_key_means_none() -> None:
    assert compile_rule(rule(dedup_key="  {{ missing }} ")).firing("a", {}).dedup_key is None
    assert compile_rule(rule()).firing("a", {}).dedup_key is None


def test_metrics_too_big_for_metadata_are_left_out() -> None:
    metrics: dict[str, MetricValue] = {f"m{i}": "v" * 256 for i in range(100)}
    firing = compile_rule(rule(name="big")).firing("a", metrics)
    assert firing.metadata == {"rule": "big", "metrics_omitted": True}
    small = compile_rule(rule(name="big")).firing("a", {"m": 1}).metadata
    assert small == {"rule": "big", "metrics": {"m": 1}} and METADATA_MAX_BYTES > 1000


# --- the rule book -----------------------------------------------------------------------------------


def test_wildcard_rules_apply_to_every_agent_and_specific_ones_to_theirs() -> None:
    book = RuleBook(
        [
            rule("x > 1", name="c-checkout", agent_id="checkout"),
            rule("x > 1", name="a-everyone"),
            rule("x > 1", name="b-billing", agent_id="billing"),
            rule("x > 1", name="d-everyone"),
        ]
    )

    def names(agent: str) -> list[str]:
        return [c.rule.name for c in book.matching(agent, {"x": 2})]

    assert names("checkout") == ["a-everyone", "c-checkout", "d-everyone"]
    assert names("billing") == ["a-everyone", "b-billing", "d-everyone"]
    assert names("other") == ["a-everyone", "d-everyone"]
    assert book.matching("checkout", {"x": 0}) == []


def test_disabled_rules_are_ignored() -> None:
    book = RuleBook([rule(name="on"), rule(name="off", enabled=False)])
    assert [c.rule.name for c in book.matching("a", {})] == ["on"] and len(book) == 1


def test_a_stored_rule_that_does_not_compile_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="herald.rules"):
        book = RuleBook([rule("x >", name="broken"), rule("x > 1", name="fine"), rule(name="t", title="{{ x")])
    assert [c.rule.name for c in book.rules] == ["fine"]
    assert [(p.rule, p.field) for p in book.skipped] == [("broken", "condition"), ("t", "title")]
    assert len(caplog.records) == 2 and "broken" in caplog.records[0].getMessage()


def test_a_new_book_reuses_unchanged_compiled_rules() -> None:
    first = RuleBook([rule(name="same"), rule(name="changed")])
    second = RuleBook([rule(name="same"), rule("false", name="changed")], reuse=first)
    assert second.rules[1] is first.rules[1]  # "same"
    assert second.rules[0] is not first.rules[0] and second.matching("a", {}) == [second.rules[1]]


def test_compiled_rule_is_the_compiler() -> None:
    assert isinstance(compile_rule(rule()), CompiledRule)
    with pytest.raises(RuleProblem):
        CompiledRule(rule("x >"))


# --- cooldowns ---------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_rule_names_groups_or_an_escalation_policy_not_both() -> None:
    """A notification takes one of them (its fan-out or its steps), so a rule naming both would fire nothing."""
    with pytest.raises(ValidationError) as exc:
        TriggerRule(
            name="disk",
            agent_id="disk-agent",
            condition="disk_used > 0.9",
            user_ids=[],
            groups=["sre"],
            escalation_policy="db",
        )
    [error] = exc.value.errors()
    assert error["loc"] == ("escalation_policy",) and "group:<name>" in error["msg"]
