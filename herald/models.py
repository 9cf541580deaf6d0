"""Every shape Herald passes around: the one source of truth for API bodies, workflow inputs and the store.

Models validate on construction, so bad input is refused before any workflow starts, with a message
that names the field and the problem.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

TITLE_MAX_CHARS = 200
BODY_MAX_BYTES = 10 * 1024
METADATA_MAX_BYTES = 16 * 1024
DEDUP_KEY_MAX_CHARS = 200

ID_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_ID_PATTERN = re.compile(ID_REGEX)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
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


class TriggerRule(BaseModel):
    """A condition over an agent's metrics that turns an event into notifications (evaluated in rules.py).

    `condition` is CEL over the event's metrics; `title`, `body` and `dedup_key` are templates that can use
    the metrics, `agent_id` and `rule` (`"Error rate {{ error_rate }} on {{ agent_id }}"`).
    """

    model_config = ConfigDict(extra="forbid")

    name: Identifier
    agent_id: str = Field(default="*", description="the agent whose events this rule sees, or * for every agent")
    condition: str = Field(min_length=1, max_length=2000, description="a CEL expression over the metrics")
    channels: list[ChannelName] = Field(default_factory=lambda: [ChannelName.push, ChannelName.email], min_length=1)
    priority: Priority = Priority.medium
    cooldown_seconds: int = Field(default=300, ge=0, description="after firing, matches are reported, not sent")
    user_ids: list[Identifier] = Field(min_length=1)
    title: str = Field(default="{{ rule }} fired for {{ agent_id }}", min_length=1, max_length=400)
    body: str = Field(default="", max_length=4000)
    dedup_key: str | None = Field(default=None, max_length=400)
    webhook_url: str | None = Field(default=None, description="reserved: a per-rule webhook target")
    enabled: bool = True

    @field_validator("agent_id")
    @classmethod
    def _agent(cls, value: str) -> str:
        return value if value == "*" else _identifier(value)


MetricValue = bool | int | float | str
METRICS_MAX = 200
METRIC_STRING_MAX_CHARS = 256
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class AgentEvent(BaseModel):
    """What an agent observed: metrics by name. Rules turn matching events into notifications."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Identifier
    metrics: dict[str, MetricValue] = Field(description="up to 200 metrics: numbers, booleans or short strings")
    event_id: Identifier = Field(
        default_factory=new_notification_id, description="send the same id again to retry safely"
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError("must be an object of metric name to number, boolean or string")
        if len(value) > METRICS_MAX:
            raise ValueError(f"has {len(value)} metrics; at most {METRICS_MAX} per event")
        for name, metric in value.items():
            if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
                raise ValueError("metric names must be identifiers (letters, digits, _; at most 64 characters)")
            if isinstance(metric, str):
                if len(metric) > METRIC_STRING_MAX_CHARS:
                    raise ValueError(f"metric {name}: strings are at most {METRIC_STRING_MAX_CHARS} characters")
            elif isinstance(metric, float):
                if metric != metric or metric in (float("inf"), float("-inf")):
                    raise ValueError(f"metric {name}: must be a finite number")
            elif not isinstance(metric, bool | int):
                raise ValueError(f"metric {name}: must be a number, a boolean or a string")
        return value


class Firing(BaseModel):
    """A rule that matched an event, rendered and ready to send; the monitor workflow applies the cooldown."""

    rule: str
    cooldown_seconds: int
    user_ids: list[str]
    channels: list[ChannelName]
    priority: Priority
    title: str
    body: str = ""
    dedup_key: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class FiringPlan(BaseModel):
    """One matched rule of one event: the notifications it sends if its cooldown allows (built and validated
    before Temporal sees them, so the monitor workflow only decides and starts)."""

    rule: str
    cooldown_seconds: int
    notifications: list[AgentNotification]


class EventRequest(BaseModel):
    """The monitor workflow's update: one event's matched rules, with the delivery policy for what it starts."""

    agent_id: str
    event_id: str
    plans: list[FiringPlan]
    policy: DeliveryPolicy


class MonitorState(BaseModel):
    """What `monitor/<agent_id>` carries across continue-as-new: until when each rule that fired cools down."""

    agent_id: str
    cooling_until: dict[str, datetime] = Field(default_factory=dict)
    last_event_at: datetime | None = None
    events_per_run: int = Field(default=500, ge=1, description="continue as new after this many events")


class FiredRule(BaseModel):
    rule: str
    notification_ids: list[str]


class CooledDownRule(BaseModel):
    rule: str
    until: datetime = Field(description="when the rule may fire again")


class EmitResult(BaseModel):
    """What an event did: the rules that fired (and their notifications), and matches held by a cooldown."""

    event_id: str
    fired: list[FiredRule] = Field(default_factory=list)
    cooled_down: list[CooledDownRule] = Field(default_factory=list)


DEFAULT_TIME_ZONE = "UTC"
DEFAULT_DIGEST_HOUR = 8
_QUIET_WINDOW = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")
_PREFERENCE_OBJECT_EXAMPLES = {
    "quiet_hours": '{"window": "22:00-07:00", "during": "hold"}',
    "digest": '{"cadence": "daily", "hour": 8, "priorities": "low"}',
}
_CHANNEL_SETTING_EXPECTED = 'must be true, false or an object with "enabled" (true or false) and "min_priority"'


def parse_quiet_window(value: str) -> tuple[time, time]:
    """`"22:00-07:00"` as its (start, end) wall-clock times; a start after the end crosses midnight."""
    match = _QUIET_WINDOW.fullmatch(value)
    if match is None:
        raise ValueError("must be HH:MM-HH:MM in 24-hour time, for example 22:00-07:00")
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    start, end = time(start_h, start_m), time(end_h, end_m)
    if start == end:
        raise ValueError("must end at another time than it starts, for example 22:00-07:00")
    return start, end


def load_time_zone(name: str) -> ZoneInfo:
    """The IANA zone by name; ValueError (not KeyError or OSError) for anything that is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ValueError: not a relative key, or not a TZif file
        raise ValueError("is not a known IANA time zone (expected a name like Europe/Berlin or UTC)") from None


class ChannelPreference(BaseModel):
    """One channel at one level in full; `true` / `false` is the shorthand for `{"enabled": ...}` alone."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, description="unset: inherit (the default level: on)")
    min_priority: Priority | None = Field(default=None, description="the lowest priority this channel carries")


class ChannelSwitches(BaseModel):
    """One level of the preferences (the default, or one agent's entry); None means "not set here".

    A channel is `true`, `false` or a ChannelPreference; bools stay bools, so a saved document reads back as written.
    """

    model_config = ConfigDict(extra="forbid")

    push: bool | ChannelPreference | None = None
    email: bool | ChannelPreference | None = None
    sms: bool | ChannelPreference | None = None
    webhook: bool | ChannelPreference | None = None
    min_priority: Priority | None = Field(
        default=None, description="the lowest priority sent on any channel (the default level: user-wide)"
    )

    @field_validator("push", "email", "sms", "webhook", mode="wrap")
    @classmethod
    def _setting(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        """By hand rather than as a plain union: one error per mistake, naming the field (`default.sms` or
        `default.sms.min_priority`), instead of one per union member with the member's name in the path."""
        if value is None or isinstance(value, bool | ChannelPreference):
            return value
        if isinstance(value, dict):
            return ChannelPreference.model_validate(value)
        raise ValueError(_CHANNEL_SETTING_EXPECTED)

    def setting(self, channel: ChannelName) -> ChannelPreference:
        """The channel's setting in full form (the shorthand expanded; unset fields None)."""
        value: bool | ChannelPreference | None = getattr(self, channel.value)
        if isinstance(value, ChannelPreference):
            return value
        return ChannelPreference(enabled=value)

    def get(self, channel: ChannelName) -> bool | None:
        """On, off, or None when this level leaves it unset."""
        return self.setting(channel).enabled


class QuietHoursAction(StrEnum):
    hold = "hold"
    digest = "digest"


class QuietHours(BaseModel):
    """A daily window in the user's `time_zone` when only critical notifications go out at once."""

    model_config = ConfigDict(extra="forbid")

    window: str = Field(description="HH:MM-HH:MM, 24-hour local time; 22:00-07:00 crosses midnight")
    during: QuietHoursAction | None = Field(
        default=None,
        description="hold (when unset): send when the window ends; digest: put them in the digest instead",
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_quiet_window(value)
        return value

    @property
    def action(self) -> QuietHoursAction:
        return self.during or QuietHoursAction.hold


class DigestCadence(StrEnum):
    off = "off"
    hourly = "hourly"
    daily = "daily"


class DigestPriorities(StrEnum):
    low = "low"
    low_and_medium = "low_and_medium"

    def includes(self, priority: Priority) -> bool:
        ceiling = Priority.low if self is DigestPriorities.low else Priority.medium
        return priority.rank <= ceiling.rank


class DigestSettings(BaseModel):
    """When the digest goes out (local time) and which priorities it collects instead of sending them now."""

    model_config = ConfigDict(extra="forbid")

    cadence: DigestCadence
    hour: int | None = Field(default=None, description="daily: the local hour it goes out, 0-23 (unset: 8)")
    priorities: DigestPriorities | None = Field(default=None, description="low (when unset) or low_and_medium")

    @field_validator("hour")
    @classmethod
    def _hour(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 23:
            raise ValueError("must be an hour from 0 to 23")
        return value

    @property
    def local_hour(self) -> int:
        return DEFAULT_DIGEST_HOUR if self.hour is None else self.hour

    @property
    def collects(self) -> DigestPriorities:
        return self.priorities or DigestPriorities.low


class Preferences(BaseModel):
    """A user's preferences: global defaults, per-agent entries merged over them field by field, and the
    user-wide time zone, quiet hours and digest. Unset fields stay unset, so GET returns what PUT saved."""

    model_config = ConfigDict(extra="forbid")

    default: ChannelSwitches = Field(default_factory=ChannelSwitches)
    agents: dict[Identifier, ChannelSwitches] = Field(default_factory=dict)
    time_zone: str | None = Field(default=None, description="IANA zone for quiet hours and digests (unset: UTC)")
    quiet_hours: QuietHours | None = None
    digest: DigestSettings | None = Field(default=None, description="unset: off")

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        if value is not None:
            load_time_zone(value)
        return value

    @field_validator("quiet_hours", "digest", mode="before")
    @classmethod
    def _object(cls, value: object, info: ValidationInfo) -> object:
        """Say what the object looks like, rather than pydantic's "instance of <class>"."""
        if value is None or isinstance(value, dict | BaseModel):
            return value
        raise ValueError(f"must be an object like {_PREFERENCE_OBJECT_EXAMPLES[info.field_name or '']}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone or DEFAULT_TIME_ZONE)


class Contact(BaseModel):
    """Where a user can be reached. Personal data: it stays in the store, never in workflow history."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    # Set by Herald, never by the user: why a provider refused the number or the endpoint. Sends to a
    # refused address stop at once (and fall back); saving the contact again clears the mark.
    phone_rejected: str | None = None
    webhook_disabled: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 254 or not _EMAIL.fullmatch(value)):
            raise ValueError("is not an email address (expected name@example.com)")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _E164.fullmatch(value):
            raise ValueError("must be in E.164 form, for example +14155550100")
        if not phonenumbers.is_valid_number(phonenumbers.parse(value)):
            raise ValueError("is not a valid phone number for its country code (check the digits)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.fullmatch(value):
            raise ValueError("must be an http:// or https:// URL")
        return value


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=200, description="the browser's ECDH public key, base64url")
    auth: str = Field(min_length=1, max_length=100, description="the subscription's auth secret, base64url")


class PushSubscription(BaseModel):
    """A Web Push subscription exactly as the browser's `PushSubscription.toJSON()` gives it."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=2048, description="the push service URL for this browser")
    keys: PushKeys
    expirationTime: int | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not _URL.fullmatch(value):
            raise ValueError("must be an http:// or https:// URL")
        return value


# --- workflow and activity contracts ------------------------------------------------------------


class RetrySettings(BaseModel):
    """Per-channel retry schedule: about 30 s, 2 min, 10 min by default."""

    initial_interval_seconds: float = Field(default=30.0, gt=0)
    backoff_coefficient: float = Field(default=4.0, ge=1)
    maximum_interval_seconds: float = Field(default=600.0, gt=0)
    maximum_retries: int = Field(default=3, ge=0)


DEFAULT_FALLBACK_ORDER = [ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook]


class DeliveryPolicy(BaseModel):
    """The tunable parts of a notification's life, fixed at start so a running workflow never changes."""

    dedup_window_seconds: int = Field(default=300, ge=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    fallback_order: list[ChannelName] = Field(default_factory=lambda: list(DEFAULT_FALLBACK_ORDER))
    send_timeout_seconds: float = Field(default=30.0, gt=0)
    critical_confirmations: int = Field(default=2, ge=1)


class NotificationRequest(BaseModel):
    """The input of NotificationWorkflow."""

    notification: AgentNotification
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    # A digest email itself: sent as it is, never digested again (quiet hours still hold it).
    is_digest: bool = False


class DedupCheck(BaseModel):
    key: str
    notification_id: str
    window_seconds: int


class DedupResult(BaseModel):
    duplicate: bool
    owner_notification_id: str


class PreferenceQuery(BaseModel):
    """What the preference activity routes. Without `priority` (histories recorded before quiet hours and
    digests) the answer is the merged on/off switches alone: no minimum priority, no hold, no digest."""

    user_id: str
    agent_id: str
    # None (and in histories recorded before quiet hours and digests): switches only, nothing held or digested.
    priority: Priority | None = None
    channels: list[ChannelName] | None = Field(default=None, description="the requested channels (unset: all)")


class EnabledChannels(BaseModel):
    """How one notification is routed for its user: the channels it may use, and whether it waits or is digested.

    (The name predates quiet hours and digests: recorded histories carry `enabled` alone, which still decodes.)
    """

    enabled: dict[ChannelName, bool]
    hold_until: datetime | None = Field(default=None, description="quiet hours: send when they end")
    digest: bool = Field(default=False, description="goes to the user's digest instead of being sent now")


class DigestItem(BaseModel):
    """One notification waiting in `digest/<user_id>`."""

    notification_id: str
    agent_id: str
    title: str
    body: str = ""
    priority: Priority
    created_at: datetime


class DigestEnqueue(BaseModel):
    """A notification going to its user's digest (signal-with-start of `digest/<user_id>`)."""

    user_id: str
    item: DigestItem
    policy: DeliveryPolicy


class DigestSchedule(BaseModel):
    user_id: str
    after: datetime


class DigestRecord(BaseModel):
    """Which digest notification carried which notifications."""

    digest_id: str
    notification_ids: list[str]


class DigestStart(BaseModel):
    """How `digest/<user_id>` starts: for whom, and what it already holds (carried across continue-as-new)."""

    user_id: str
    items: list[DigestItem] = Field(default_factory=list)
    sent: int = Field(default=0, description="digests sent so far: numbers the next digest's id")
    policy: DeliveryPolicy = Field(default_factory=lambda: DeliveryPolicy())


class DeliveryRequest(BaseModel):
    notification: AgentNotification
    channel: ChannelName
    workflow_id: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}/{self.channel.value}"


class DeliveryReceipt(BaseModel):
    channel: ChannelName
    attempt: int
    provider_message_id: str | None = None
    already_delivered: bool = False


class DeliveryAttempt(BaseModel):
    """One row of the delivery log: one try of one channel for one notification."""

    notification_id: str
    workflow_id: str
    channel: ChannelName
    attempt: int
    idempotency_key: str
    result: ChannelStatus
    error_type: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    started_at: datetime
    finished_at: datetime
    # What the provider reported later (Twilio: delivered, undelivered, failed), if it reports at all.
    provider_status: str | None = None
    provider_error_code: str | None = None


class ChannelResult(BaseModel):
    """Where one channel stands for one notification."""

    channel: ChannelName
    status: ChannelStatus = ChannelStatus.pending
    attempt_count: int = 0
    error_type: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    fallback_for: ChannelName | None = None
    escalation: bool = False


class NotificationOutcome(BaseModel):
    """The live state (from the `status` query) and the final result of a notification."""

    notification_id: str
    workflow_id: str
    agent_id: str
    user_id: str
    priority: Priority
    status: NotificationStatus = NotificationStatus.pending
    channels: dict[ChannelName, ChannelResult] = Field(default_factory=dict)
    duplicate_of: str | None = None
    ops_alert: str | None = None
    held_until: datetime | None = Field(default=None, description="quiet hours held it until then")
    digest_id: str | None = Field(default=None, description="the digest notification that carried it")

    @property
    def delivered_channels(self) -> list[ChannelName]:
        return [c for c, r in self.channels.items() if r.status is ChannelStatus.delivered]

    @model_validator(mode="after")
    def _keys_match(self) -> NotificationOutcome:
        for channel, result in self.channels.items():
            if result.channel is not channel:
                raise ValueError(f"channels.{channel.value} holds a result for {result.channel.value}")
        return self


class OpsAlert(BaseModel):
    """Something operators must look at, e.g. a critical alert nobody confirmed on two channels."""

    notification_id: str
    kind: str
    message: str


# --- retention -----------------------------------------------------------------------------------


class RetentionRequest(BaseModel):
    """The input of RetentionWorkflow, fixed in the schedule: how many days of history to keep."""

    retention_days: int = Field(ge=1)
    batch_size: int = Field(default=1000, gt=0)


class PurgeRequest(BaseModel):
    """Delete what was recorded before `cutoff`, and dedup keys expired by `now` (both from workflow time)."""

    cutoff: datetime
    now: datetime
    batch_size: int = Field(default=1000, gt=0)


class RetentionReport(BaseModel):
    """What one cleanup deleted, by table."""

    cutoff: datetime
    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values())
