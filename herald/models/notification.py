"""What an agent sends: one notification for one person."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from herald.models.common import (
    BODY_MAX_BYTES,
    DEDUP_KEY_MAX_CHARS,
    METADATA_MAX_BYTES,
    TITLE_MAX_CHARS,
    ChannelName,
    Identifier,
    Priority,
    new_notification_id,
    utcnow,
)


class AgentNotification(BaseModel):
    """What an agent sends: one message for one person, on one or more channels."""

    model_config = ConfigDict(extra="forbid")

    notification_id: Identifier = Field(default_factory=new_notification_id)
    agent_id: Identifier
    user_id: Identifier
    title: str
    body: str = ""
    priority: Priority = Priority.medium
    channels: list[ChannelName] = Field(default_factory=lambda: [ChannelName.push, ChannelName.email])
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    dedup_key: str | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > TITLE_MAX_CHARS:
            raise ValueError(f"is {len(value)} characters; the limit is {TITLE_MAX_CHARS}")
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        size = len(value.encode())
        if size > BODY_MAX_BYTES:
            raise ValueError(f"is {size} bytes; the limit is {BODY_MAX_BYTES} (10 KB)")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[ChannelName]) -> list[ChannelName]:
        if not value:
            raise ValueError("must name at least one channel (push, email, sms, webhook)")
        return list(dict.fromkeys(value))  # keep order, drop repeats

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serializable ({exc})") from exc
        if size > METADATA_MAX_BYTES:
            raise ValueError(f"is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES} (16 KB)")
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("dedup_key")
    @classmethod
    def _dedup_key(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= len(value) <= DEDUP_KEY_MAX_CHARS:
            raise ValueError(f"must be 1-{DEDUP_KEY_MAX_CHARS} characters")
        return value

    @property
    def workflow_id(self) -> str:
        return f"notification/{self.notification_id}"
