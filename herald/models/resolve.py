"""Resolving: an agent says the problem behind its open notifications with one dedup_key is over."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.models.common import DEDUP_KEY_MAX_CHARS, ChannelName, Identifier, OneField, Priority


class ResolveBody(BaseModel):
    """`POST /v1/notifications/resolve`: every open notification of `agent_id` sent with `dedup_key` resolves (open:
    still on its way, or delivered and not yet resolved)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Identifier
    dedup_key: str = Field(
        description="the dedup_key the notifications were sent with (a rule's rendered dedup_key)",
        json_schema_extra={"minLength": 1, "maxLength": DEDUP_KEY_MAX_CHARS},
    )

    @field_validator("dedup_key")
    @classmethod
    def _dedup_key(cls, value: str) -> str:
        if not 1 <= len(value) <= DEDUP_KEY_MAX_CHARS:
            raise ValueError(f"must be 1-{DEDUP_KEY_MAX_CHARS} characters")
        return value


class ResolveRequest(BaseModel):
    """The `resolve` update's input: who resolves (`agent:<id>`, `admin`, `rule:<name>`, ...)."""

    by: str = Field(max_length=200)


class Resolution(BaseModel):
    """Who resolved a notification, and when (in its outcome)."""

    by: str
    at: datetime


class ResolveResult(BaseModel):
    """What a resolve did: the notifications it resolved (none is a no-op, and `message` says so)."""

    agent_id: str
    resolved: list[str] = Field(
        default_factory=list,
        description="ids of the notifications it resolved: those still running and those delivered before it",
    )
    message: str


class ResolvedNotice(BaseModel):
    """The `announce_resolved` activity's input: a resolved notification, to tell where it was delivered (what to
    update is decided in the workflow: herald.domain.resolve.resolve_plan)."""

    notification_id: str
    workflow_id: str = ""
    user_id: str
    agent_id: str
    priority: Priority
    title: str
    by: str
    at: datetime | None = None
    delivered: list[ChannelName] = Field(default_factory=list)
    replace_push: bool = False  # a Web Push with the same Topic replaces the one shown
    tell: list[ChannelName] = Field(default_factory=list)  # email, SMS: a short `Resolved: <title>`


class ResolvedAnnounced(OneField):
    """Where `announce_resolved` told of the resolve (channel names: `push` is the live WebSocket frame)."""

    told: list[str]


class ResolvedNotifications(OneField):
    """The workflow ids `resolve_notifications` resolved (the others had ended, or were never open)."""

    resolved: list[str]


class ResolveEndedResult(BaseModel):
    """What ResolveEndedWorkflow did: resolved (its outcome recorded `resolved`, what was delivered told), or why
    not (`reason`: already resolved, not delivered, no outcome recorded)."""

    notification_id: str
    resolved: bool
    reason: str | None = None
    told: list[str] = Field(default_factory=list)
