"""Trigger rules: CEL conditions over an agent's metrics, templates for what they send, cooldowns.

Everything here is pure and in-process: an event that matches no rule costs no Temporal or database work.
(Interface fixed; the implementation is being written.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from herald.models import Firing, MetricValue, TriggerRule


class RuleProblem(ValueError):
    """A rule that cannot be used, naming the field and the problem (for CEL, the position in the condition)."""

    def __init__(self, rule: str, field: str, message: str) -> None:
        super().__init__(f"rule {rule}: {field} {message}")
        self.rule, self.field, self.message = rule, field, message


@dataclass(frozen=True)
class CompiledRule:
    rule: TriggerRule

    def matches(self, metrics: Mapping[str, MetricValue]) -> bool:
        """True when the condition holds; a metric the condition needs but the event lacks means False."""
        raise NotImplementedError

    def firing(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> Firing:
        """The rendered notification content for a match (title, body, dedup_key from the templates)."""
        raise NotImplementedError


def compile_rule(rule: TriggerRule) -> CompiledRule:
    """Compile the condition and the templates once; raise RuleProblem if any of them cannot work."""
    raise NotImplementedError


class RuleBook:
    """The enabled rules, compiled and indexed by agent (`*` rules apply to every agent)."""

    def __init__(self, rules: Iterable[TriggerRule]) -> None:
        raise NotImplementedError

    def matching(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> list[CompiledRule]:
        raise NotImplementedError


def cooldown_until(last_fired: datetime | None, cooldown_seconds: int) -> datetime | None:
    """When a rule that last fired at `last_fired` may fire again (None: it never fired, it may fire now)."""
    if last_fired is None:
        return None
    return last_fired + timedelta(seconds=cooldown_seconds)


def may_fire(last_fired: datetime | None, cooldown_seconds: int, now: datetime) -> bool:
    until = cooldown_until(last_fired, cooldown_seconds)
    return until is None or now >= until
