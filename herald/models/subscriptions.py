"""Subscriptions to what happens: signed POSTs of notification outcomes and heartbeat misses to a subscriber's URL.

`SubscriptionInput` is what a caller sends (API, CLI, HeraldClient, MCP); `Subscription` is what the store keeps,
with its delivery state. An event (`SubscriptionEvent`) carries ids, the channel, the status and the time only:
never a title, a body, an address or an answer's text. Which events an outcome makes is decided in
herald/domain/subscriptions.py; SubscriptionWorkflow (`subscription/<name>`) posts them one at a time, in order.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.models.common import URL_REGEX, Identifier, Timestamp
from herald.models.delivery import RetrySettings

SUBSCRIPTION_URL_MAX_CHARS = 2000
SUBSCRIPTION_ERROR_MAX_CHARS = 300
_URL = re.compile(URL_REGEX)


class SubscriptionEventType(StrEnum):
    delivered = "notification.delivered"
    failed = "notification.failed"
    acknowledged = "notification.acknowledged"
    answered = "notification.answered"
    resolved = "notification.resolved"
    silenced = "notification.silenced"
    digested = "notification.digested"
    grouped = "notification.grouped"
    heartbeat_missed = "heartbeat.missed"


class SubscriptionInput(BaseModel):
    """A subscription as `PUT /v1/subscriptions/{name}` takes it: where to POST, which events, and (optionally)
    whose notifications. An agent key subscribes to its own agent's only (`agent_id` must name it)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=SUBSCRIPTION_URL_MAX_CHARS,
        description="http(s) URL that receives the signed POSTs; checked against the SSRF guard when saved and sent",
        json_schema_extra={"pattern": URL_REGEX},
    )
    events: list[SubscriptionEventType] = Field(
        min_length=1, max_length=len(SubscriptionEventType), description="the event types to receive"
    )
    agent_id: Identifier | None = Field(default=None, description="only this agent's notifications and heartbeats")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not _URL.fullmatch(value):
            raise ValueError("must be an http:// or https:// URL")
        return value


class Subscription(BaseModel):
    """A subscription with its delivery state: disabled after it kept failing (`failures` events in a row, each
    after its retries); a PUT enables it again."""

    name: Identifier
    url: str
    events: list[SubscriptionEventType]
    agent_id: str | None = None
    owner: str = Field(description="who made it: admin, cli, client, or agent:<id>")
    enabled: bool = True
    failures: int = Field(default=0, description="events in a row that failed after their retries")
    last_error: str | None = Field(default=None, description="the last failure, bounded")
    disabled_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp


class SubscriptionState(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class SubscriptionView(Subscription):
    state: SubscriptionState


class SubscriptionEvent(BaseModel):
    """One event as the subscriber receives it (the POST's body): `id` is its `webhook-id` too, so a repeat can
    be dropped. `data` holds ids, the channel, the status and times only."""

    id: str
    type: SubscriptionEventType
    timestamp: datetime
    data: dict[str, str | None] = Field(default_factory=dict)
    # Whose it is: what a subscription's `agent_id` matches.
    agent_id: str | None = None


class SubscriptionRun(BaseModel):
    """SubscriptionWorkflow's input and what it carries over a continue-as-new: events not yet posted, the ids
    posted lately (a repeated signal is dropped), the failures in a row, and the retry schedule fixed at start."""

    name: str
    retry: RetrySettings = Field(default_factory=RetrySettings)
    max_failures: int = Field(default=5, ge=1)
    send_timeout_seconds: float = Field(default=30.0, gt=0)
    failures: int = 0
    pending: list[SubscriptionEvent] = Field(default_factory=list)
    recent_ids: list[str] = Field(default_factory=list)
    events_per_run: int = Field(default=500, ge=1)


class SubscriptionPost(BaseModel):
    """The input of the post_subscription_event activity: the URL is read from the store, never carried."""

    name: str
    event: SubscriptionEvent


class SubscriptionPostResult(StrEnum):
    sent = "sent"
    gone = "gone"  # the subscription was deleted or disabled: nothing to send it to


class SubscriptionMark(BaseModel):
    """The input of mark_subscription: the failures in a row after an event, its error, and whether that
    disables the subscription."""

    name: str
    failures: int
    last_error: str | None = None
    disable: bool = False
