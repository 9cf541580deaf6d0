"""Trigger rules: CEL conditions over an agent's metrics, templates for what they send, cooldowns.

Everything here is pure and in-process: an event that matches no rule costs no Temporal or database work.

Conditions are CEL (the `cel` package). Each metric is a variable of its own (`error_rate > 0.05`), and the
map `metrics` holds them all (`metrics.error_rate`, `metrics["error_rate"]`). `has(x)` works on a bare
metric name: it is rewritten to `has(metrics.x)` before compiling, since CEL's `has()` needs a field selection.

A metric the event lacks is an error inside CEL; CEL's `&&`, `||` and `?:` absorb errors the other side makes
irrelevant, so `!has(x) || x > 10` fires without `x`, and any condition that still ends in an error, or in
anything but a boolean, does not fire. Metrics named like CEL types (`int`, `string`, ...) or like reserved words
are reachable only through `metrics`.

Templates are Jinja2 in a sandbox, without HTML escaping (plain text; the email template escapes). They see
every metric by name, `agent_id`, `rule` and `metrics` (these three win over metrics of the same name); a
missing metric renders as an empty string.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from herald.domain.conditions import CEL_TYPE_OF, Condition, RuleProblem, cel_context, compile_condition
from herald.models import (
    BODY_MAX_BYTES,
    DEDUP_KEY_MAX_CHARS,
    GROUP_KEY_MAX_CHARS,
    METADATA_MAX_BYTES,
    TITLE_MAX_CHARS,
    Firing,
    MetricValue,
    TriggerRule,
)

logger = logging.getLogger("herald.rules")

__all__ = ["CompiledRule", "RuleBook", "RuleProblem", "compile_rule"]


# --- templates -------------------------------------------------------------------------------------

# One sandbox for every rule: templates cannot reach Python internals (`''.__class__` renders as nothing).
_TEMPLATES = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=True)


def _compile_template(rule: TriggerRule, field_name: str, source: str) -> Any:
    try:
        tree = _TEMPLATES.parse(source)
    except TemplateSyntaxError as exc:
        raise RuleProblem(rule.name, field_name, f"at line {exc.lineno}: {exc.message}") from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Include, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Getattr):
            name: object = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Getitem):
            continue
        else:
            raise RuleProblem(rule.name, field_name, f"at line {node.lineno}: templates cannot include or import")
        if isinstance(name, str) and name.startswith("_"):
            message = f"at line {node.lineno}: '{name}' is not allowed (names starting with _ are internal)"
            raise RuleProblem(rule.name, field_name, message)
    return _TEMPLATES.from_string(tree)


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _metadata(name: str, metrics: Mapping[str, MetricValue]) -> dict[str, Any]:
    """The rule and the event's metrics, or only the rule when the metrics would break the 16 KB limit."""
    metadata: dict[str, Any] = {"rule": name, "metrics": dict(metrics)}
    try:
        size = len(json.dumps(metadata, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError):
        size = METADATA_MAX_BYTES + 1
    return metadata if size <= METADATA_MAX_BYTES else {"rule": name, "metrics_omitted": True}


# --- compiled rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to evaluate: constructing one compiles it (RuleProblem if it cannot work)."""

    rule: TriggerRule
    _condition: Condition = field(init=False, repr=False, compare=False)
    _title: Any = field(init=False, repr=False, compare=False)
    _body: Any = field(init=False, repr=False, compare=False)
    _dedup_key: Any = field(init=False, repr=False, compare=False)
    _group_key: Any = field(init=False, repr=False, compare=False)
    _warned: set[str] = field(init=False, repr=False, compare=False, default_factory=set)

    def __post_init__(self) -> None:
        rule = self.rule
        object.__setattr__(self, "_condition", compile_condition(rule))
        object.__setattr__(self, "_title", _compile_template(rule, "title", rule.title))
        object.__setattr__(self, "_body", _compile_template(rule, "body", rule.body))
        dedup = _compile_template(rule, "dedup_key", rule.dedup_key) if rule.dedup_key else None
        object.__setattr__(self, "_dedup_key", dedup)
        group = _compile_template(rule, "group_key", rule.group_key) if rule.group_key else None
        object.__setattr__(self, "_group_key", group)

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def required(self) -> frozenset[str]:
        """Metrics without which this rule cannot fire: an event lacking one skips it without running CEL."""
        return self._condition.required

    def matches(self, metrics: Mapping[str, MetricValue]) -> bool:
        """True when the condition holds; a metric the condition needs but the event lacks means False."""
        if not metrics.keys() >= self._condition.required:
            return False
        return self._evaluate(metrics) is True

    def clears(self, metrics: Mapping[str, MetricValue]) -> bool:
        """True when the event says the condition no longer holds: it carries every metric the condition names, and
        the condition is false (not an error). An event about something else (without those metrics) clears
        nothing, so a heartbeat never resolves an alert."""
        if not metrics.keys() >= self._condition.variables:
            return False
        return self._evaluate(metrics) is False

    def _evaluate(self, metrics: Mapping[str, MetricValue]) -> bool | None:
        """The condition's boolean; None when it fails to evaluate or gives anything but a boolean."""
        condition = self._condition
        try:
            result = condition.program.execute(cel_context(metrics, condition.metrics_view))
        except Exception as exc:  # every CEL failure means "does not fire"
            # A missing metric is routine; a type mismatch on metrics that are all there is the rule's fault.
            if metrics.keys() >= condition.variables:
                self._warn_once("error", "rule %s: condition failed to evaluate (%s); not firing", type(exc).__name__)
            return None
        if isinstance(result, bool):
            return result
        cel_type = CEL_TYPE_OF.get(type(result), type(result).__name__)
        self._warn_once("type", "rule %s: condition gave type %s, not true or false; not firing", cel_type)
        return None

    def _warn_once(self, kind: str, message: str, detail: str) -> None:
        """Once per compiled rule and kind: a broken rule must not flood the log with one line per event."""
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(message, self.rule.name, detail)

    def firing(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> Firing:
        """The rendered notification content for a match (title, body, dedup_key from the templates).

        Never raises: a template that fails on these metrics (say `{{ x + 1 }}` without `x`) falls back to the
        default title, an empty body or no dedup key, with a warning naming the rule and the field.
        """
        rule = self.rule
        variables = self._variables(agent_id, metrics)
        title = self._render("title", self._title, variables).strip()[:TITLE_MAX_CHARS].strip()
        if not title:
            title = f"{rule.name} fired for {agent_id}"[:TITLE_MAX_CHARS]
        body = _cut_bytes(self._render("body", self._body, variables), BODY_MAX_BYTES)
        dedup_key = self._rendered_key(variables)
        return Firing(
            rule=rule.name,
            cooldown_seconds=rule.cooldown_seconds,
            user_ids=list(rule.user_ids),
            groups=list(rule.groups),
            channels=list(rule.channels),
            priority=rule.priority,
            title=title,
            body=body,
            dedup_key=dedup_key,
            metadata=_metadata(rule.name, metrics),
            resolve=rule.resolve,
            group_key=self._rendered_group_key(variables),
            group_wait_seconds=rule.group_wait_seconds,
            group_interval_seconds=rule.group_interval_seconds,
            escalation_policy=rule.escalation_policy,
        )

    def dedup_key_for(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> str | None:
        """The rule's dedup_key rendered for this event (None: the rule has none, or it renders empty): the cooldown
        scope a clearing event resolves."""
        return self._rendered_key(self._variables(agent_id, metrics))

    def _variables(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> dict[str, Any]:
        return {**metrics, "agent_id": agent_id, "rule": self.rule.name, "metrics": dict(metrics)}

    def _rendered_key(self, variables: dict[str, Any]) -> str | None:
        if self._dedup_key is None:
            return None
        return self._render("dedup_key", self._dedup_key, variables).strip()[:DEDUP_KEY_MAX_CHARS] or None

    def _rendered_group_key(self, variables: dict[str, Any]) -> str | None:
        """The group_key rendered: control characters out, whitespace runs one space, cut to the limit; empty: None
        (the notification is not grouped)."""
        if self._group_key is None:
            return None
        text = "".join(
            c for c in self._render("group_key", self._group_key, variables) if c.isprintable() or c.isspace()
        )
        return " ".join(text.split())[:GROUP_KEY_MAX_CHARS].strip() or None

    def _render(self, field_name: str, template: Any, variables: dict[str, Any]) -> str:
        try:
            return str(template.render(variables))
        except Exception as exc:  # a template failing on one event must not lose the alert
            logger.warning(
                "rule %s: %s template failed (%s); using the fallback", self.rule.name, field_name, type(exc).__name__
            )
            return ""


def compile_rule(rule: TriggerRule) -> CompiledRule:
    """Compile the condition and the templates once; raise RuleProblem if any of them cannot work."""
    return CompiledRule(rule)


class RuleBook:
    """The enabled rules, compiled and indexed by agent (`*` rules apply to every agent).

    A stored rule that no longer compiles is skipped (and listed in `skipped`) rather than failing every event.
    `reuse` hands over a previous book so unchanged rules are not compiled again.
    """

    def __init__(self, rules: Iterable[TriggerRule], *, reuse: RuleBook | None = None) -> None:
        previous = {compiled.rule.name: compiled for compiled in reuse.rules} if reuse else {}
        compiled_rules: list[CompiledRule] = []
        self.skipped: list[RuleProblem] = []
        for rule in rules:
            if not rule.enabled:
                continue
            known = previous.get(rule.name)
            if known is not None and known.rule == rule:
                compiled_rules.append(known)
                continue
            try:
                compiled_rules.append(CompiledRule(rule))
            except RuleProblem as problem:
                self.skipped.append(problem)
                logger.warning("rule %s skipped: its %s does not compile", rule.name, problem.field)
        compiled_rules.sort(key=lambda compiled: compiled.rule.name)
        self.rules: tuple[CompiledRule, ...] = tuple(compiled_rules)
        self._wildcard = tuple(c for c in compiled_rules if c.rule.agent_id == "*")
        own: dict[str, list[CompiledRule]] = {}
        for compiled in compiled_rules:
            if compiled.rule.agent_id != "*":
                own.setdefault(compiled.rule.agent_id, []).append(compiled)
        self._by_agent = {
            agent: tuple(sorted((*rules, *self._wildcard), key=lambda c: c.rule.name)) for agent, rules in own.items()
        }

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, agent_id: str) -> tuple[CompiledRule, ...]:
        """The rules that see this agent's events, by name."""
        return self._by_agent.get(agent_id, self._wildcard)

    def matching(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> list[CompiledRule]:
        """The rules whose condition holds for this event, by name."""
        return [compiled for compiled in self.candidates(agent_id) if compiled.matches(metrics)]

    def clearing(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> list[CompiledRule]:
        """The rules with `resolve: true` this event clears (CompiledRule.clears), by name."""
        return [c for c in self.candidates(agent_id) if c.rule.resolve and c.clears(metrics)]
