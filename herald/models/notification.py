"""What an agent sends: one notification for one person."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from herald.models.answers import ACTIONS_MAX, Action
from herald.models.common import (
    BODY_MAX_BYTES,
    DEDUP_KEY_MAX_CHARS,
    GROUP_INTERVAL_DEFAULT_SECONDS,
    GROUP_INTERVAL_MAX_SECONDS,
    GROUP_KEY_MAX_CHARS,
    GROUP_WAIT_DEFAULT_SECONDS,
    GROUP_WAIT_MAX_SECONDS,
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    TITLE_MAX_CHARS,
    URL_REGEX,
    WHITESPACE,
    ChannelName,
    Identifier,
    JsonInt,
    Priority,
    Timestamp,
    new_notification_id,
    stripped_text,
    stripped_text_pattern,
    utcnow,
)
from herald.models.groups import Quorum, QuorumCount


def json_depth(value: object) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion: the input is hostile."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


_URL = re.compile(URL_REGEX)
# A group key is a label (it names the group's workflow, `group/<user>/<agent>/<key>`): printable, no control
# characters, no surrounding whitespace (spelled out as WHITESPACE: `\s` means other things in JSON Schema and Python).
GROUP_KEY_REGEX = (
    f"^[^{WHITESPACE}\\x00-\\x1f\\x7f]"
    f"(?:[^\\x00-\\x1f\\x7f]{{0,{GROUP_KEY_MAX_CHARS - 2}}}[^{WHITESPACE}\\x00-\\x1f\\x7f])?$"
)
_GROUP_KEY = re.compile(GROUP_KEY_REGEX)


def notification_workflow_id(notification_id: str) -> str:
    """`notification/<notification_id>`: the id of the one workflow that carries a notification."""
    return f"notification/{notification_id}"


class AgentNotification(BaseModel):
    """What an agent sends: one message for one person, on one or more channels."""

    # respond_by and callback_url only with actions: the schema says so with if/then.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {
                    "if": {"required": [field], "properties": {field: {"type": "string"}}},
                    "then": {"required": ["actions"], "properties": {"actions": {"minItems": 1}}},
                }
                for field in ("respond_by", "callback_url")
            ]
        },
    )

    notification_id: Identifier = Field(default_factory=new_notification_id)
    agent_id: Identifier
    # Exactly one of user_id (one person) or group (each member of a group, herald/models/groups.py).
    user_id: Identifier | None = Field(default=None, description="the person to notify (or give `group`)")
    group: Identifier | None = Field(
        default=None,
        validate_default=True,
        description="a group (PUT /v1/groups/{name}) instead of user_id: one notification per member, each with "
        "that member's own preferences",
    )
    # The schema says what the validators below enforce, as far as JSON Schema can (see each description).
    title: str = Field(
        description=f"1-{TITLE_MAX_CHARS} characters once surrounding whitespace is stripped",
        json_schema_extra={"pattern": stripped_text_pattern(TITLE_MAX_CHARS)},
    )
    body: str = Field(
        default="",
        description=f"at most {BODY_MAX_BYTES} bytes as UTF-8 (10 KB)",
        json_schema_extra={"maxLength": BODY_MAX_BYTES},
    )
    priority: Priority = Priority.medium
    channels: list[ChannelName] = Field(
        default_factory=lambda: [ChannelName.push, ChannelName.email], json_schema_extra={"minItems": 1}
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"any JSON object, at most {METADATA_MAX_BYTES} bytes as JSON, nested at most {METADATA_MAX_DEPTH} deep",
    )
    created_at: Timestamp = Field(default_factory=utcnow, description="without a time zone: UTC")
    dedup_key: str | None = Field(default=None, json_schema_extra={"minLength": 1, "maxLength": DEDUP_KEY_MAX_CHARS})
    # A question: the choices offered (up to 5) and, optionally, until when an answer is taken.
    actions: list[Action] = Field(
        default_factory=list,
        description=f"choices the person may answer with (at most {ACTIONS_MAX}, ids unique)",
        json_schema_extra={"maxItems": ACTIONS_MAX},
    )
    respond_by: Timestamp | None = Field(
        default=None,
        description="answers are taken until then: in the future, with a time zone, and only with actions",
    )
    callback_url: str | None = Field(
        default=None,
        description="where Herald POSTs the answer (or the expiry), signed like its webhooks; a public address, "
        "and only with actions",
        json_schema_extra={"pattern": URL_REGEX, "maxLength": 2048},
    )
    quorum: Quorum = Field(
        default="first",
        description='a question to a group: "first" (the first answer decides) or {"action": "approve", "count": 2} '
        "(decided once `count` distinct members chose `action`; any other action by anyone decides at once)",
    )

    # A group: notifications of one agent for one user with one group_key are delivered together, in one message.
    group_key: str | None = Field(
        default=None,
        description=f"deliver it together with this agent's other notifications to this user with the same key: "
        f"1-{GROUP_KEY_MAX_CHARS} printable characters, no surrounding whitespace. Critical notifications and "
        "questions are never grouped",
        json_schema_extra={"pattern": GROUP_KEY_REGEX, "maxLength": GROUP_KEY_MAX_CHARS},
    )
    # Escalation: notify the policy's steps in turn until someone acks (herald/models/oncall.py).
    escalation_policy: Identifier | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # a notification without one reads as it always did
        description="the escalation policy to notify instead of user_id: step 1's targets, then each next step's "
        "while nobody acks; user_id stays the notification's owner (who sees its outcome)",
    )
    group_wait_seconds: JsonInt = Field(
        default=GROUP_WAIT_DEFAULT_SECONDS,
        ge=0,
        le=GROUP_WAIT_MAX_SECONDS,
        description="with group_key: how long the first of a group waits for the others before the one message",
    )
    group_interval_seconds: JsonInt = Field(
        default=GROUP_INTERVAL_DEFAULT_SECONDS,
        ge=1,
        le=GROUP_INTERVAL_MAX_SECONDS,
        description="with group_key: members arriving after a group's message go together at the next interval",
    )

    @field_validator("group")
    @classmethod
    def _one_recipient(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "user_id" not in info.data:
            return value  # user_id was invalid: its own error says so
        if (info.data["user_id"] is None) == (value is None):
            raise ValueError("give exactly one of user_id or group")
        return value

    @field_validator("escalation_policy")
    @classmethod
    def _not_both(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("group") is not None:
            raise ValueError("give group or escalation_policy, not both: a policy's step names a group as group:<name>")
        return value

    @field_validator("quorum")
    @classmethod
    def _quorum(cls, value: Quorum, info: ValidationInfo) -> Quorum:
        if value == "first" or not isinstance(value, QuorumCount):
            return value
        if info.data.get("group") is None:
            raise ValueError("needs a group: only a question to a group is decided by more than one person")
        actions = info.data.get("actions") or []
        if value.action not in [a.id for a in actions]:
            raise ValueError(f"action must be one of the question's actions ({', '.join(a.id for a in actions)})")
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return stripped_text(value, TITLE_MAX_CHARS)

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
        depth = json_depth(value)
        if depth > METADATA_MAX_DEPTH:
            raise ValueError(f"is nested {depth} levels deep; the limit is {METADATA_MAX_DEPTH}")
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

    @field_validator("group_key")
    @classmethod
    def _group_key(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value) > GROUP_KEY_MAX_CHARS:
            raise ValueError(f"is {len(value)} characters; the limit is {GROUP_KEY_MAX_CHARS}")
        if not _GROUP_KEY.fullmatch(value):
            raise ValueError("must be printable characters without control characters or surrounding whitespace")
        return value

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: list[Action]) -> list[Action]:
        if len(value) > ACTIONS_MAX:
            raise ValueError(f"has {len(value)} actions; the limit is {ACTIONS_MAX}")
        ids = [action.id for action in value]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"action ids must be unique; repeated: {', '.join(repeated)}")
        return value

    @field_validator("respond_by")
    @classmethod
    def _respond_by(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # "In the future" is checked where a notification enters Herald (herald.answers.check_respond_by), not
        # here: this model is decoded again inside the workflow and its activities, after the deadline too.
        if value is None:
            return value
        # Naive times are refused rather than guessed: an agent's local 17:00 is not UTC's.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must include a time zone, for example 2026-11-21T17:00:00Z")
        if "actions" in info.data and not info.data["actions"]:
            raise ValueError("needs actions: it is the deadline for answers, and this notification asks nothing")
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not _URL.fullmatch(value) or len(value) > 2048:
            raise ValueError("must be an http:// or https:// URL (up to 2048 characters)")
        if "actions" in info.data and not info.data["actions"]:
            raise ValueError("needs actions: Herald calls it back with the answer, and this notification asks nothing")
        return value

    @property
    def asks(self) -> bool:
        """Whether this notification is a question: it offers actions and waits for an answer."""
        return bool(self.actions)

    @property
    def recipient(self) -> str:
        """The user this notification is for; a group notification's is `group:<name>` (its outcome's user_id)."""
        return self.user_id if self.user_id is not None else f"group:{self.group}"

    @property
    def workflow_id(self) -> str:
        return notification_workflow_id(self.notification_id)
