"""Trigger rules and agent events, and what the monitor workflow is handed and answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from herald.models.common import (
    GROUP_INTERVAL_DEFAULT_SECONDS,
    GROUP_INTERVAL_MAX_SECONDS,
    GROUP_WAIT_DEFAULT_SECONDS,
    GROUP_WAIT_MAX_SECONDS,
    ID_REGEX,
    ChannelName,
    Identifier,
    JsonInt,
    Priority,
    _identifier,
    new_notification_id,
)
from herald.models.delivery import DeliveryPolicy
from herald.models.notification import AgentNotification


class TriggerRule(BaseModel):
    """A condition over an agent's metrics that turns an event into notifications (evaluated in rules.py).

    `condition` is CEL over the event's metrics; `title`, `body`, `dedup_key` and `group_key` are templates that can
    use the metrics, `agent_id` and `rule` (`"Error rate {{ error_rate }} on {{ agent_id }}"`).
    """

    model_config = ConfigDict(extra="forbid")

    name: Identifier
    agent_id: str = Field(
        default="*",
        description="the agent whose events this rule sees, or * for every agent",
        json_schema_extra={"pattern": f"^(\\*|{ID_REGEX[1:-1]})$"},
    )
    condition: str = Field(min_length=1, max_length=2000, description="a CEL expression over the metrics")
    channels: list[ChannelName] = Field(default_factory=lambda: [ChannelName.push, ChannelName.email], min_length=1)
    priority: Priority = Priority.medium
    cooldown_seconds: int = Field(default=300, ge=0, description="after firing, matches are reported, not sent")
    groups: list[Identifier] = Field(
        default_factory=list, description="groups to notify: one notification to each (a child per member)"
    )
    user_ids: list[Identifier] = Field(
        default_factory=list, validate_default=True, description="users to notify (at least one, or give groups)"
    )
    title: str = Field(default="{{ rule }} fired for {{ agent_id }}", min_length=1, max_length=400)
    body: str = Field(default="", max_length=4000)
    dedup_key: str | None = Field(default=None, max_length=400)
    group_key: str | None = Field(
        default=None,
        max_length=400,
        description="a template: the notifications it fires with one rendered key (per user) are delivered together "
        "in one message (`checkout/{{ metrics.region }}`); rendering empty: not grouped",
    )
    group_wait_seconds: JsonInt = Field(default=GROUP_WAIT_DEFAULT_SECONDS, ge=0, le=GROUP_WAIT_MAX_SECONDS)
    group_interval_seconds: JsonInt = Field(default=GROUP_INTERVAL_DEFAULT_SECONDS, ge=1, le=GROUP_INTERVAL_MAX_SECONDS)
    webhook_url: str | None = Field(default=None, description="reserved: a per-rule webhook target")
    escalation_policy: Identifier | None = Field(
        default=None,
        description="its notifications escalate along this policy (PUT /v1/escalation-policies/{name}) instead of "
        "going to their user_ids, who stay their owners",
    )
    resolve: bool = Field(
        default=False,
        description="when a later event of the agent holds every metric the condition names and makes it false, "
        "the notifications the rule fired (for that rendered dedup_key) resolve",
    )
    enabled: bool = True

    @field_validator("agent_id")
    @classmethod
    def _agent(cls, value: str) -> str:
        return value if value == "*" else _identifier(value)

    @field_validator("user_ids")
    @classmethod
    def _someone(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value and not info.data.get("groups"):
            raise ValueError("must name at least one user (or give groups)")
        return value

    @field_validator("escalation_policy")
    @classmethod
    def _not_with_groups(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("groups"):
            raise ValueError(
                "give groups or escalation_policy, not both: a policy's step names a group as group:<name>"
            )
        return value


MetricValue = bool | int | float | str
METRICS_MAX = 200
METRIC_STRING_MAX_CHARS = 256
METRIC_NAME_REGEX = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_METRIC_NAME = re.compile(METRIC_NAME_REGEX)


class AgentEvent(BaseModel):
    """What an agent observed: metrics by name. Rules turn matching events into notifications."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Identifier
    metrics: dict[str, MetricValue] = Field(
        description="up to 200 metrics: numbers, booleans or short strings",
        json_schema_extra={
            "maxProperties": METRICS_MAX,
            "propertyNames": {"pattern": METRIC_NAME_REGEX},
            "additionalProperties": {
                "anyOf": [
                    {"type": "boolean"},
                    {"type": "number"},
                    {"type": "string", "maxLength": METRIC_STRING_MAX_CHARS},
                ]
            },
        },
    )
    event_id: Identifier = Field(
        default_factory=new_notification_id, description="send the same id again to retry safely"
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError("must be an object of metric name to number, boolean or string")
        if len(value) > METRICS_MAX:
            raise ValueError(f"has {len(value)} metrics; at most {METRICS_MAX} per event")
        for name, metric in value.items():
            if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
                raise ValueError("metric names must be identifiers (letters, digits, _; at most 64 characters)")
            if isinstance(metric, str):
                if len(metric) > METRIC_STRING_MAX_CHARS:
                    raise ValueError(f"metric {name}: strings are at most {METRIC_STRING_MAX_CHARS} characters")
            elif isinstance(metric, float):
                if metric != metric or metric in (float("inf"), float("-inf")):
                    raise ValueError(f"metric {name}: must be a finite number")
            elif not isinstance(metric, bool | int):
                raise ValueError(f"metric {name}: must be a number, a boolean or a string")
        return value


class Firing(BaseModel):
    """A rule that matched an event, rendered and ready to send; the monitor workflow applies the cooldown."""

    rule: str
    cooldown_seconds: int
    user_ids: list[str]
    groups: list[str] = Field(default_factory=list)  # the rule's groups: one group notification each
    channels: list[ChannelName]
    priority: Priority
    title: str
    body: str = ""
    dedup_key: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    resolve: bool = False  # the rule's `resolve`: the monitor remembers what it fired, to resolve it
    # The rule's rendered group_key (None: not grouped) and its wait and interval.
    group_key: str | None = None
    group_wait_seconds: int = GROUP_WAIT_DEFAULT_SECONDS
    group_interval_seconds: int = GROUP_INTERVAL_DEFAULT_SECONDS
    escalation_policy: str | None = None


class FiringPlan(BaseModel):
    """One matched rule of one event: the notifications it sends if its cooldown allows (built and validated
    before Temporal sees them, so the monitor workflow only decides and starts)."""

    rule: str
    cooldown_seconds: int
    notifications: list[AgentNotification]
    resolve: bool = Field(default=False, description="the rule resolves: the monitor remembers these notifications")
    cooldown_key: str | None = Field(
        default=None, description="the rule's rendered dedup_key: the rule cools down per key (None: per rule)"
    )


class Clearing(BaseModel):
    """A rule with `resolve: true` whose condition an event made false: what it fired for this key resolves."""

    rule: str
    cooldown_key: str | None = Field(default=None, description="the rule's dedup_key, rendered for the event")


class RememberedFiring(BaseModel):
    """What a resolving rule fired for one cooldown scope, kept by the monitor until a clearing event or `until`."""

    notification_ids: list[str] = Field(default_factory=list)
    until: datetime


class EventRequest(BaseModel):
    """The monitor workflow's update: one event's matched rules, with the delivery policy for what it starts."""

    agent_id: str
    event_id: str
    plans: list[FiringPlan]
    policy: DeliveryPolicy
    # Rules with `resolve: true` the event made false: the monitor resolves what each fired for that scope.
    clearing: list[Clearing] = Field(default_factory=list)


class MonitorState(BaseModel):
    """What `monitor/<agent_id>` carries across continue-as-new: until when each rule that fired cools down."""

    agent_id: str
    cooling_until: dict[str, datetime] = Field(default_factory=dict)
    last_event_at: datetime | None = None
    # Per cooldown scope of a rule with `resolve: true`: the notifications it fired, until a clearing event (or
    # herald.domain.events.RESOLVE_MEMORY) ends them.
    resolvable: dict[str, RememberedFiring] = Field(default_factory=dict)
    events_per_run: int = Field(default=500, ge=1, description="continue as new after this many events")


class FiredRule(BaseModel):
    rule: str
    notification_ids: list[str]


class CooledDownRule(BaseModel):
    rule: str
    until: datetime = Field(description="when the rule may fire again")


class ResolvedRule(BaseModel):
    """A rule with `resolve: true` that the event made false: the notifications of its that the event resolved (open
    ones; those already ended are left as they are)."""

    rule: str
    notification_ids: list[str] = Field(default_factory=list)


class EmitResult(BaseModel):
    """What an event did: the rules that fired (and their notifications), and matches held by a cooldown."""

    event_id: str
    fired: list[FiredRule] = Field(default_factory=list)
    cooled_down: list[CooledDownRule] = Field(default_factory=list)
    resolved: list[ResolvedRule] = Field(
        default_factory=list, description="rules with `resolve: true` this event made false, and what they resolved"
    )
