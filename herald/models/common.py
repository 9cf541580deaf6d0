"""Limits, identifiers and the enums every other model uses."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
)

TITLE_MAX_CHARS = 200
BODY_MAX_BYTES = 10 * 1024
METADATA_MAX_BYTES = 16 * 1024
# Deeper than this, JSON stops being data; and past ~200 levels Temporal's payload decoding refuses it.
METADATA_MAX_DEPTH = 32
DEDUP_KEY_MAX_CHARS = 200

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


class ChannelStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


def _identifier(value: str) -> str:
    if not _ID_PATTERN.fullmatch(value):
        raise ValueError("must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


def new_notification_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)
