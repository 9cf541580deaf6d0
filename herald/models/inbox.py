"""The browser inbox: which notifications a person has read, what a page of their history shows, and test sends."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.models.common import ChannelName, Identifier, Priority, Timestamp

# Individually read ids kept past the read-up-to mark. "Mark all read" folds them into the mark, so the list only
# grows with single clicks between two of those; past the cap the oldest marks are forgotten (shown unread again).
READ_IDS_MAX = 500
MARK_IDS_MAX = 200


class NotificationContent(BaseModel):
    """What a notification said, kept so the inbox can show its history (the audit record holds ids and outcomes)."""

    notification_id: str
    agent_id: str
    user_id: str
    title: str
    body: str = ""
    priority: Priority
    created_at: datetime


class Said(Protocol):
    """What a notification said, wherever it is read from: the notification itself, or its digest item."""

    @property
    def notification_id(self) -> str: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def priority(self) -> Priority: ...
    @property
    def created_at(self) -> datetime: ...


def content_of(said: Said, user_id: str) -> NotificationContent:
    """The inbox's copy of what `said` said to `user_id` (a sent notification, or a digested one's item)."""
    return NotificationContent(
        notification_id=said.notification_id,
        agent_id=said.agent_id,
        user_id=user_id,
        title=said.title,
        body=said.body,
        priority=said.priority,
        created_at=said.created_at,
    )


class InboxReadState(BaseModel):
    """A person's read marks: everything created at or before `read_up_to`, plus `read_ids` one by one."""

    model_config = ConfigDict(extra="forbid")

    read_up_to: datetime | None = Field(default=None, description="notifications created at or before are read")
    read_ids: dict[str, datetime] = Field(
        default_factory=dict, description="read one by one since: notification_id -> when it was marked"
    )


class MarkRead(BaseModel):
    """`POST /v1/users/{user_id}/notifications/read`: some notifications by id, or everything up to a time."""

    # At least one of the two, as the validator below insists.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["notification_ids"], "properties": {"notification_ids": {"minItems": 1}}},
                {"required": ["up_to"], "properties": {"up_to": {"type": "string"}}},
            ]
        },
    )

    notification_ids: list[Identifier] = Field(default_factory=list, max_length=MARK_IDS_MAX)
    up_to: Timestamp | None = Field(
        default=None, description='"mark all read": everything created at or before this time (ISO 8601)'
    )

    @model_validator(mode="after")
    def _something(self) -> MarkRead:
        if not self.notification_ids and self.up_to is None:
            raise ValueError("give notification_ids, up_to, or both")
        return self


class TestNotificationRequest(BaseModel):
    """`POST /v1/users/{user_id}/test-notification`: send one notification on this channel only."""

    __test__ = False  # not a pytest test class, whatever its name says

    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
