"""Silences: a time window in which the notifications a silence matches end `silenced`, logged and not delivered.

`SilenceInput` is what a caller sends (API, CLI, HeraldClient, MCP); `Silence` is what the store keeps. The matching
and the time rules are pure functions in herald/domain/silences.py.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from herald.models.common import (
    DEDUP_KEY_MAX_CHARS,
    Identifier,
    Priority,
    Timestamp,
    stripped_text,
    stripped_text_pattern,
)

SILENCE_COMMENT_MAX_CHARS = 500
# What a silence may match on; at least one of them must be set (a silence of everything is refused).
SILENCE_MATCHER_FIELDS = ("agent_id", "rule", "user_id", "dedup_key")


class SilenceMatchers(BaseModel):
    """Which notifications a silence holds: every field given must equal the notification's (`rule` is the rule
    that fired it, `dedup_key` the agent's own key); fields left out match anything. At least one of agent_id,
    rule, user_id, dedup_key. Priorities above `max_priority` get through: critical only with `critical`."""

    model_config = ConfigDict(
        extra="forbid",
        # At least one matcher given and not null (a null one matches anything, like one left out).
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in SILENCE_MATCHER_FIELDS
            ]
        },
    )

    agent_id: Identifier | None = None
    rule: Identifier | None = Field(default=None, description="the name of the rule that fired the notification")
    user_id: Identifier | None = None
    dedup_key: str | None = Field(default=None, json_schema_extra={"minLength": 1, "maxLength": DEDUP_KEY_MAX_CHARS})
    max_priority: Priority = Field(
        default=Priority.high,
        description="the highest priority silenced (default high: critical gets through unless this is critical)",
    )

    @field_validator("dedup_key")
    @classmethod
    def _dedup_key(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= len(value) <= DEDUP_KEY_MAX_CHARS:
            raise ValueError(f"must be 1-{DEDUP_KEY_MAX_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _not_everything(self) -> SilenceMatchers:
        if all(getattr(self, name) is None for name in SILENCE_MATCHER_FIELDS):
            raise ValueError(
                "needs at least one of agent_id, rule, user_id, dedup_key: a silence of everything is refused"
            )
        return self


class SilenceInput(BaseModel):
    """A new silence as a caller sends it. `starts_at` defaults to now; `ends_at` must be after it and in the
    future (checked where the silence enters Herald: herald.domain.silences.new_silence)."""

    model_config = ConfigDict(extra="forbid")

    matchers: SilenceMatchers
    starts_at: Timestamp | None = Field(default=None, description="with a time zone; default: now")
    ends_at: Timestamp = Field(description="with a time zone; after starts_at and in the future")
    comment: str = Field(
        description=f"why: 1-{SILENCE_COMMENT_MAX_CHARS} characters once surrounding whitespace is stripped",
        json_schema_extra={"pattern": stripped_text_pattern(SILENCE_COMMENT_MAX_CHARS)},
    )

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("must include a time zone, for example 2026-11-21T17:00:00Z")
        return value

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: str) -> str:
        return stripped_text(value, SILENCE_COMMENT_MAX_CHARS, empty="must not be empty: say why")


class SilenceState(StrEnum):
    pending = "pending"  # starts_at is still ahead
    active = "active"
    expired = "expired"  # ends_at has passed (or it was expired early)


class Silence(BaseModel):
    """A silence as the store keeps it and the API shows it."""

    silence_id: str
    matchers: SilenceMatchers
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str = Field(description="who made it: admin, agent:<id>, user:<id> or cli")
    created_at: datetime


class SilenceView(Silence):
    """A silence with its state at the moment it was read."""

    state: SilenceState


class SilenceQuery(BaseModel):
    """The `check_silences` activity's input: what a silence can match of one notification (ids and a priority,
    no text)."""

    notification_id: str
    agent_id: str
    user_id: str
    priority: Priority
    rule: str | None = None
    dedup_key: str | None = None


class SilenceMatch(BaseModel):
    """The `check_silences` activity's result: the silence holding the notification, if one does."""

    silence_id: str | None = None
