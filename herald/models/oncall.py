"""Escalation policies and on-call schedules (issue #23, Teams).

`EscalationPolicyInput` and `ScheduleInput` are what `PUT /v1/escalation-policies/{name}` and
`PUT /v1/schedules/{name}` take; `EscalationPolicy` and `Schedule` are what the store keeps. A step's target is
`user:<id>`, `group:<name>` or `schedule:<name>` (herald.domain.oncall.parse_target). Who is on call at an instant
is decided in herald.domain.oncall.on_call; how a notification escalates along a policy, in
workflows/notification.py (`_escalate`), on durable timers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from herald.models.answers import Answer
from herald.models.common import Identifier, JsonInt

TARGET_REGEX = r"^(user|group|schedule):[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_TARGET = re.compile(TARGET_REGEX)
STEPS_MAX = 10
TARGETS_MAX = 20
REPEAT_MAX = 3
ACK_WITHIN_MAX_SECONDS = 86_400
MEMBERS_MAX = 100
OVERRIDES_MAX = 100
SHIFT_HOURS_MAX = 24 * 28


def wall_clock(value: datetime, zone: tzinfo) -> datetime:
    """`value` on the schedule's wall clock (naive): one with an offset converted, one without taken as it is."""
    return value if value.tzinfo is None else value.astimezone(zone).replace(tzinfo=None)


class EscalationStep(BaseModel):
    """One step: who is notified, and how long they have to ack before the next step is notified too."""

    model_config = ConfigDict(extra="forbid")

    targets: list[str] = Field(
        min_length=1,
        max_length=TARGETS_MAX,
        description="`user:<id>`, `group:<name>` (its members) or `schedule:<name>` (who is on call when the step runs)",
        json_schema_extra={"items": {"type": "string", "pattern": TARGET_REGEX}},
    )
    ack_within_seconds: JsonInt = Field(ge=1, le=ACK_WITHIN_MAX_SECONDS, description="wait this long for an ack")

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for target in value:
            if not _TARGET.fullmatch(target):
                raise ValueError("each target must be user:<id>, group:<name> or schedule:<name>")
        return value


class EscalationPolicyInput(BaseModel):
    """An escalation policy as `PUT /v1/escalation-policies/{name}` takes it."""

    model_config = ConfigDict(extra="forbid")

    steps: list[EscalationStep] = Field(min_length=1, max_length=STEPS_MAX)
    repeat: JsonInt = Field(default=0, ge=0, le=REPEAT_MAX, description="run the whole policy again this many times")


class EscalationPolicy(EscalationPolicyInput):
    name: Identifier
    updated_at: datetime


class Rotation(BaseModel):
    """Members take shifts of `shift_hours` in turn from `starts_at`, counted on the schedule's wall clock."""

    model_config = ConfigDict(extra="forbid")

    members: list[Identifier] = Field(min_length=1, max_length=MEMBERS_MAX, description="user ids, in turn")
    shift_hours: JsonInt = Field(ge=1, le=SHIFT_HOURS_MAX)
    starts_at: datetime = Field(
        description="the first shift's start: without an offset, a wall-clock time in the schedule's time zone"
    )


class Override(BaseModel):
    """`user_id` is on call from `starts_at` until `ends_at`, whatever the rotation says."""

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    starts_at: datetime = Field(description="without an offset: in the schedule's time zone")
    ends_at: datetime = Field(description="without an offset: in the schedule's time zone")


class ScheduleInput(BaseModel):
    """An on-call schedule as `PUT /v1/schedules/{name}` takes it."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(min_length=1, max_length=64, description="an IANA time zone, e.g. Europe/Berlin")
    rotation: Rotation
    overrides: list[Override] = Field(default_factory=list, max_length=OVERRIDES_MAX)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from None
        return value

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: list[Override], info: ValidationInfo) -> list[Override]:
        zone = ZoneInfo(info.data["time_zone"]) if "time_zone" in info.data else UTC
        for i, override in enumerate(value):
            if wall_clock(override.ends_at, zone) <= wall_clock(override.starts_at, zone):
                raise ValueError(f"override {i}: ends_at must be after starts_at")
        return value


class Schedule(ScheduleInput):
    name: Identifier
    updated_at: datetime


class OnCall(BaseModel):
    """Who is on call on a schedule at an instant (`GET /v1/schedules/{name}/on-call`)."""

    schedule: str
    at: datetime
    user_id: str | None = Field(description="None before the rotation's first shift")
    override: bool = Field(default=False, description="an override put them there")


class EscalationLink(BaseModel):
    """On a child notification of an escalation: the escalating workflow to tell of the first ack or answer."""

    parent_workflow_id: str
    round: int
    step: int


class EscalationAck(BaseModel):
    """A child's ack or answer, signalled to the escalating workflow."""

    notification_id: str
    user_id: str
    answer: Answer
    round: int
    step: int


class EscalationStepOutcome(BaseModel):
    """One step as it ran: when, who was notified (their child notifications), who acked."""

    round: int
    step: int
    at: datetime
    targets: list[str]
    notified: list[str] = Field(default_factory=list, description="user ids notified at this step")
    notifications: list[str] = Field(default_factory=list, description="their notification ids")
    unresolved: list[str] = Field(
        default_factory=list,
        description="targets that named nobody then (an unknown schedule or group, nobody on call)",
    )


class EscalationAcked(BaseModel):
    by: str
    channel: str
    at: datetime
    notification_id: str
    step: int
    round: int


class EscalationOutcome(BaseModel):
    """An escalated notification's escalation: its policy, each step run, and the ack that stopped it."""

    policy: str
    steps: list[EscalationStepOutcome] = Field(default_factory=list)
    acked: EscalationAcked | None = None
    error: str | None = Field(default=None, description="why it escalated to nobody (an unknown policy)")


class TargetQuery(BaseModel):
    """The `resolve_targets` activity's input: a step's targets, resolved to user ids at `at`."""

    targets: list[str]
    at: datetime


class ResolvedTargets(BaseModel):
    user_ids: list[str]
    unresolved: list[str] = Field(default_factory=list, description="targets naming nothing (an unknown schedule)")


class PolicyQuery(BaseModel):
    name: str


class PolicyFound(BaseModel):
    policy: EscalationPolicy | None = None
