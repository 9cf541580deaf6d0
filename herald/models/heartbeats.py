"""Heartbeats: an agent promises to check in every so often; a missed check-in notifies a person.

`PUT /v1/heartbeats/{name}` takes a `HeartbeatInput` (the name comes from the path); the heartbeat's workflow
(`heartbeat/<agent_id>/<name>`) carries the `HeartbeatSpec`, its pings and its `HeartbeatRun` state; a
`HeartbeatStatus` is what `GET /v1/heartbeats` shows of one.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.models.common import ChannelName, Identifier, JsonInt, Priority
from herald.models.delivery import DeliveryPolicy

HEARTBEAT_NAME_REGEX = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_HEARTBEAT_NAME = re.compile(HEARTBEAT_NAME_REGEX)
# 31 days: a monthly job still fits; beyond that a heartbeat is a calendar, not a watchdog.
HEARTBEAT_SECONDS_MAX = 31 * 24 * 3600
HEARTBEAT_PINGS_PER_RUN = 1000


def heartbeat_workflow_id(agent_id: str, name: str) -> str:
    """`heartbeat/<agent_id>/<name>`: neither part can hold a `/`, so the id names one heartbeat."""
    return f"heartbeat/{agent_id}/{name}"


def _heartbeat_name(value: str) -> str:
    if not _HEARTBEAT_NAME.fullmatch(value):
        raise ValueError(
            "must be 1-64 characters of lowercase letters, digits, - and _, starting with a letter or digit"
        )
    return value


class HeartbeatState(StrEnum):
    up = "up"  # checked in within every_seconds + grace_seconds of the last check-in
    missed = "missed"  # the deadline passed without a check-in; its person was notified once


class HeartbeatEvent(StrEnum):
    """What a heartbeat tells its person, each at most once per miss: counted in herald_heartbeat_events."""

    missed = "missed"
    resumed = "resumed"


class HeartbeatNotify(BaseModel):
    """Whom a missed check-in notifies, and how."""

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    priority: Priority = Priority.high
    channels: list[ChannelName] | None = Field(
        default=None,
        description="channels to try, in order (default: the notification's, push and email)",
        json_schema_extra={"minItems": 1},
    )

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[ChannelName] | None) -> list[ChannelName] | None:
        if value is not None and not value:
            raise ValueError("must name at least one channel, or be left out")
        return list(dict.fromkeys(value)) if value is not None else None


class HeartbeatInput(BaseModel):
    """A heartbeat as PUT takes it: the agent that checks in, how often, and whom a miss notifies."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Identifier
    every_seconds: JsonInt = Field(ge=1, le=HEARTBEAT_SECONDS_MAX, description="the agent checks in this often")
    grace_seconds: JsonInt = Field(
        default=0, ge=0, le=HEARTBEAT_SECONDS_MAX, description="how late a check-in may be before it counts as missed"
    )
    notify: HeartbeatNotify


class HeartbeatSpec(HeartbeatInput):
    """A heartbeat with its name: what its workflow runs on."""

    name: str = Field(
        description="1-64 characters: lowercase letters, digits, - and _",
        json_schema_extra={"pattern": HEARTBEAT_NAME_REGEX},
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _heartbeat_name(value)

    @property
    def workflow_id(self) -> str:
        return heartbeat_workflow_id(self.agent_id, self.name)


class HeartbeatConfig(BaseModel):
    """The workflow's `configure` signal (PUT's signal-with-start): the spec, and the policy its notifications use."""

    spec: HeartbeatSpec
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class HeartbeatPing(BaseModel):
    """The workflow's `ping` signal. `at` is when the sender (the API, or HeraldClient) sent it: a ping that
    reached Temporal before the deadline counts as in time even when no worker was running to see it then."""

    at: datetime


class HeartbeatRun(BaseModel):
    """What `heartbeat/<agent_id>/<name>` carries across continue-as-new."""

    config: HeartbeatConfig
    state: HeartbeatState = HeartbeatState.up
    last_ping_at: datetime | None = Field(default=None, description="None until the workflow starts: then its start")
    missed_at: datetime | None = Field(default=None, description="the deadline that was missed, while missed")
    missed_notification_id: str | None = Field(default=None, description="the alert the next check-in resolves")
    pings_per_run: int = Field(default=HEARTBEAT_PINGS_PER_RUN, ge=1, description="continue as new after this many")


class MissedCheckInResolve(BaseModel):
    """resolve_missed_check_in's input: the missed alert's workflow, and who resolves it (`heartbeat:<agent>/<name>`)."""

    workflow_id: str
    by: str = Field(max_length=200)


class HeartbeatStatus(BaseModel):
    """A heartbeat now: its spec, when it last checked in, whether it is up, and when the next check-in is due."""

    name: str
    agent_id: str
    every_seconds: int
    grace_seconds: int
    notify: HeartbeatNotify
    state: HeartbeatState
    last_ping_at: datetime
    deadline: datetime = Field(description="last_ping_at + every_seconds + grace_seconds: due by then (or missed then)")
    missed_at: datetime | None = Field(default=None, description="while missed: the deadline that passed")


class HeartbeatPinged(BaseModel):
    """What a ping answers: which heartbeat, and the time it counts as checked in."""

    name: str
    agent_id: str
    pinged_at: datetime


class HeartbeatList(BaseModel):
    heartbeats: list[HeartbeatStatus]
