"""Limits, identifiers and the enums every other model uses."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, WithJsonSchema, model_validator

TITLE_MAX_CHARS = 200
BODY_MAX_BYTES = 10 * 1024
METADATA_MAX_BYTES = 16 * 1024
# Deeper than this, JSON stops being data; and past ~200 levels Temporal's payload decoding refuses it.
METADATA_MAX_DEPTH = 32
DEDUP_KEY_MAX_CHARS = 200
GROUP_KEY_MAX_CHARS = 200
# A group's first member waits this long for the others; later members go at most once an interval.
GROUP_WAIT_DEFAULT_SECONDS = 30
GROUP_WAIT_MAX_SECONDS = 3600
GROUP_INTERVAL_DEFAULT_SECONDS = 300
GROUP_INTERVAL_MAX_SECONDS = 86400

ID_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_ID_PATTERN = re.compile(ID_REGEX)
# Patterns are applied with fullmatch: `$` alone would also accept a trailing newline.


class Priority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.low: 0, Priority.medium: 1, Priority.high: 2, Priority.critical: 3}


class ChannelName(StrEnum):
    push = "push"
    email = "email"
    sms = "sms"
    webhook = "webhook"
    # One-way chat through Apprise (Teams, Discord, ntfy, ...), to the contact's chat_urls.
    chat = "chat"
    # Chat channels both ways: a direct message with buttons, answered in the chat itself. Opt-in: a user without
    # the channel's contact field (slack_user_id, telegram_chat_id) is never routed to them.
    slack = "slack"
    telegram = "telegram"


class NotificationStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    partially_delivered = "partially_delivered"
    confirmed = "confirmed"
    unconfirmed = "unconfirmed"
    suppressed_duplicate = "suppressed_duplicate"
    no_channel = "no_channel"
    digested = "digested"
    failed = "failed"
    answered = "answered"  # a question, answered in time: the outcome holds the answer
    expired = "expired"  # a question nobody answered by its respond_by
    silenced = "silenced"  # a silence matched it: logged, not delivered (the outcome's silence_id names it)
    resolved = "resolved"  # its agent said the problem is over (POST /v1/notifications/resolve): nothing more is sent
    # Over the person's max_per_hour: into the digest, or one "N more" message at the hour's end (digest_id names it).
    throttled = "throttled"
    # It has a group_key: delivered with the others of its group in one message (group_id names the group's workflow).
    grouped = "grouped"


class ChannelStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"
    stopped = "stopped"  # its send or retry was still pending when the notification was resolved


def _identifier(value: str) -> str:
    if not _ID_PATTERN.fullmatch(value):
        raise ValueError("must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit")
    return value


Identifier = Annotated[
    str,
    AfterValidator(_identifier),
    WithJsonSchema({"type": "string", "pattern": ID_REGEX, "minLength": 1, "maxLength": 128}),
]

# Whitespace as Python's str.strip() and str.split() see it, spelled out: `\s` differs between Python's regexes
# and JSON Schema's (ECMA 262), and a published pattern must mean the same to a client as to the server.
WHITESPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
SPACE, NOT_SPACE = f"[{WHITESPACE}]", f"[^{WHITESPACE}]"
URL_REGEX = f"^https?://[^{WHITESPACE}/]+(/{NOT_SPACE}*)?$"


def stripped_text(value: str, max_chars: int, empty: str = "must not be empty") -> str:
    """A text as Herald keeps it: stripped of surrounding whitespace, 1 to `max_chars` characters (code points);
    the errors name the problem, never the text. What stripped_text_pattern publishes."""
    value = value.strip()
    if not value:
        raise ValueError(empty)
    if len(value) > max_chars:
        raise ValueError(f"is {len(value)} characters; the limit is {max_chars}")
    return value


def stripped_text_pattern(max_chars: int) -> str:
    """The JSON Schema pattern of a text that, stripped of surrounding whitespace, is 1 to `max_chars` characters."""
    return f"^{SPACE}*{NOT_SPACE}(?:[\\s\\S]{{0,{max_chars - 2}}}{NOT_SPACE})?{SPACE}*$"


def _json_integer(value: object) -> object:
    """JSON Schema's integer: a number without a fraction. Pydantic alone would also take `true` and `"8"`."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


# An int field exactly as the schema's `"type": "integer"` says (8 and 8.0, never true or "8").
JsonInt = Annotated[int, BeforeValidator(_json_integer)]

# What a time field takes: an ISO 8601 date and time (a datetime in Python). Pydantic alone would also take a
# number (seconds since 1970), a string of digits or a bare date, none of which the schema's date-time allows.
_DATE_TIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
DATE_TIME_PROBLEM = "must be an ISO 8601 date and time, for example 2026-11-21T17:00:00Z"


def _date_time(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME_TEXT.match(value):
        raise ValueError(DATE_TIME_PROBLEM)
    return value


Timestamp = Annotated[datetime, BeforeValidator(_date_time)]


def new_notification_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class OneField(BaseModel):
    """A model of one field that also reads the bare value in its place: what a worker of an earlier version sent
    to or returned from an activity that now takes or returns the model (recorded histories hold those values)."""

    @model_validator(mode="before")
    @classmethod
    def _from_bare_value(cls, value: object) -> object:
        if isinstance(value, dict | BaseModel):
            return value
        [name] = cls.model_fields
        return {name: value}


def as_utc(value: datetime) -> datetime:
    """The same moment in UTC; a naive value is taken as UTC already (SQLite keeps the wall time and drops the
    offset, so the store writes every timestamp through this)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
