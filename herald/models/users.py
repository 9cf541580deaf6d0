"""What a person sets: preferences (channels, quiet hours, digest), contact and Web Push subscriptions."""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
)
from pydantic.config import JsonDict, JsonValue

from herald.models.common import URL_REGEX, WHITESPACE, ChannelName, Identifier, JsonInt, Priority

DEFAULT_TIME_ZONE = "UTC"
DEFAULT_DIGEST_HOUR = 8
E164_REGEX = r"^\+[1-9][0-9]{6,14}$"
EMAIL_REGEX = f"^[^@{WHITESPACE}]+@[^@{WHITESPACE}]+\\.[^@{WHITESPACE}]+$"
# A Slack member id (U... for a user, W... for an Enterprise Grid user), as Slack shows it in a profile.
SLACK_USER_ID_REGEX = r"^[UW][A-Z0-9]{2,20}$"
_SLACK_USER_ID = re.compile(SLACK_USER_ID_REGEX)
_E164 = re.compile(E164_REGEX)
_EMAIL = re.compile(EMAIL_REGEX)
_URL = re.compile(URL_REGEX)

# The `chat` channel's Apprise URLs: a handful per person, each bounded; the shape here, whether Apprise can load it
# (and whether its scheme and address are allowed) when the contact is saved (herald/api/users.py).
CHAT_URLS_MAX = 5
CHAT_URL_MAX_CHARS = 2048
CHAT_URL_REGEX = r"^[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s]+$"
_CHAT_URL = re.compile(CHAT_URL_REGEX)


def _chat_url(value: str) -> str:
    if len(value) > CHAT_URL_MAX_CHARS or not _CHAT_URL.fullmatch(value):
        # Never the value: it holds the service's token.
        raise ValueError(f"must be an Apprise URL (scheme://...) of at most {CHAT_URL_MAX_CHARS} characters")
    return value


ChatUrl = Annotated[
    str,
    AfterValidator(_chat_url),
    WithJsonSchema({"type": "string", "pattern": CHAT_URL_REGEX, "minLength": 4, "maxLength": CHAT_URL_MAX_CHARS}),
]
_HH_MM = "([01][0-9]|2[0-3]):([0-5][0-9])"
_QUIET_WINDOW = re.compile(f"^{_HH_MM}-{_HH_MM}$")
# The same, as the schema says it: and the window must not end where it starts.
QUIET_WINDOW_REGEX = r"^(?!(\d\d:\d\d)-\1$)" + f"{_HH_MM}-{_HH_MM}$"
# The zones the schema lists: every IANA name this machine's tz database has (the server loads any of them).
TIME_ZONES: list[JsonValue] = list(sorted(available_timezones()))
_PREFERENCE_OBJECT_EXAMPLES = {
    "quiet_hours": '{"window": "22:00-07:00", "during": "hold"}',
    "digest": '{"cadence": "daily", "hour": 8, "priorities": "low"}',
}
NOTIFY_RESOLVED_EXPECTED = "must be false or a priority (low, medium, high, critical)"
_CHANNEL_SETTING_EXPECTED = (
    'must be true, false or an object with "enabled" (true or false), "min_priority" and "max_per_hour"'
)
# Throttling (herald/domain/throttle.py): at most this many notifications an hour, per agent or per channel.
MAX_PER_HOUR_DESCRIPTION = (
    "at most this many notifications an hour (the clock hour, UTC) from one agent{what}; the rest of the hour's go "
    "to the digest, or into one 'N more' message at the hour's end when the digest is off; critical ones are never "
    "throttled (unset: no limit)"
)


def _max_per_hour(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ValueError("must be a whole number of at least 1 (leave it out for no limit)")
    return value


def is_email_address(value: str) -> bool:
    """`name@example.com`: one @, no spaces, a dot in the domain (what providers accept as an address)."""
    return len(value) <= 254 and _EMAIL.fullmatch(value) is not None


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

    enabled: StrictBool | None = Field(default=None, description="unset: inherit (the default level: on)")
    min_priority: Priority | None = Field(default=None, description="the lowest priority this channel carries")
    max_per_hour: JsonInt | None = Field(
        default=None,
        description=MAX_PER_HOUR_DESCRIPTION.format(what=" on this channel (over it, the channel is left out)"),
        json_schema_extra={"minimum": 1},
    )

    @field_validator("max_per_hour")
    @classmethod
    def _max(cls, value: int | None) -> int | None:
        return _max_per_hour(value)


class ChannelSwitches(BaseModel):
    """One level of the preferences (the default, or one agent's entry); None means "not set here".

    A channel is `true`, `false` or a ChannelPreference; bools stay bools, so a saved document reads back as written.
    """

    model_config = ConfigDict(extra="forbid")

    push: bool | ChannelPreference | None = None
    email: bool | ChannelPreference | None = None
    sms: bool | ChannelPreference | None = None
    webhook: bool | ChannelPreference | None = None
    chat: bool | ChannelPreference | None = None
    slack: bool | ChannelPreference | None = None
    telegram: bool | ChannelPreference | None = None
    min_priority: Priority | None = Field(
        default=None, description="the lowest priority sent on any channel (the default level: user-wide)"
    )
    max_per_hour: JsonInt | None = Field(
        default=None,
        description=MAX_PER_HOUR_DESCRIPTION.format(what=" on all channels together"),
        json_schema_extra={"minimum": 1},
    )

    @field_validator("max_per_hour")
    @classmethod
    def _max(cls, value: int | None) -> int | None:
        return _max_per_hour(value)

    notify_resolved: Priority | Literal[False] | None = Field(
        default=None,
        description="the lowest priority whose resolve is told by a short email and SMS (`Resolved: <title>`) "
        "where the notification reached those; false: never; unset everywhere: high (high and critical)",
    )

    @field_validator("notify_resolved", mode="before")
    @classmethod
    def _notify_resolved(cls, value: object) -> object:
        """One error naming the field, rather than one per member of the union."""
        if value is None or value is False or isinstance(value, Priority):
            return value
        if isinstance(value, str) and value in Priority.__members__:
            return Priority(value)
        raise ValueError(NOTIFY_RESOLVED_EXPECTED)

    @field_validator("push", "email", "sms", "webhook", "chat", "slack", "telegram", mode="wrap")
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

    window: str = Field(
        description="HH:MM-HH:MM, 24-hour local time; 22:00-07:00 crosses midnight; it may not end where it starts",
        json_schema_extra={"pattern": QUIET_WINDOW_REGEX},
    )
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
    hour: JsonInt | None = Field(
        default=None,
        description="daily: the local hour it goes out, 0-23 (unset: 8)",
        json_schema_extra={"minimum": 0, "maximum": 23},
    )
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
    # Keys are agent ids: pydantic publishes them as patternProperties, and nothing else is a key.
    agents: dict[Identifier, ChannelSwitches] = Field(
        default_factory=dict, json_schema_extra={"additionalProperties": False}
    )
    time_zone: str | None = Field(
        default=None,
        description="IANA zone for quiet hours and digests (unset: UTC)",
        json_schema_extra={"anyOf": [{"type": "string", "enum": TIME_ZONES}, {"type": "null"}]},
    )
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


_READ_ONLY: JsonDict = {"readOnly": True}


class Contact(BaseModel):
    """Where a user can be reached. Personal data: it stays in the store, never in workflow history."""

    # A refusal names the field, never the value (an address, a number, a chat URL's token).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    email: str | None = Field(default=None, json_schema_extra={"pattern": EMAIL_REGEX, "maxLength": 254})
    phone: str | None = Field(
        default=None,
        description="E.164, and a number that exists for its country code",
        json_schema_extra={"pattern": E164_REGEX},
    )
    webhook_url: str | None = Field(
        default=None, description="an http(s) URL of a public address", json_schema_extra={"pattern": URL_REGEX}
    )
    chat_urls: list[ChatUrl] | None = Field(
        default=None,
        max_length=CHAT_URLS_MAX,
        description="Apprise URLs (discord://, ntfys://, workflows://, ...) for the `chat` channel; they hold "
        "secrets, so reading the contact back shows each as its scheme only (`discord://…`)",
    )
    slack_user_id: str | None = Field(
        default=None,
        description="a Slack member id, such as U024BE7LH (the profile's “Copy member ID”)",
        json_schema_extra={"pattern": SLACK_USER_ID_REGEX},
    )
    # Set by the bot when the person sends it `/start <code>` (`herald telegram link <user>`); a PUT may keep it.
    telegram_chat_id: JsonInt | None = Field(
        default=None, description="the Telegram chat bound with `herald telegram link` (set by Herald)"
    )
    # Set by Herald, never by the user: why a provider refused the number or the endpoint. Sends to a
    # refused address stop at once (and fall back); saving the contact again clears the mark (so a PUT that
    # sends them sets nothing: they are read-only).
    phone_rejected: str | None = Field(
        default=None, description="set by Herald: why the SMS provider refused the number", json_schema_extra=_READ_ONLY
    )
    webhook_disabled: str | None = Field(
        default=None, description="set by Herald: why webhooks to the URL stopped", json_schema_extra=_READ_ONLY
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not is_email_address(value):
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

    @field_validator("slack_user_id")
    @classmethod
    def _slack_user_id(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK_USER_ID.fullmatch(value):
            raise ValueError("must be a Slack member id, for example U024BE7LH")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.fullmatch(value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    def masked(self) -> Contact:
        """The contact as it may be shown back: each chat URL as its scheme alone (its tokens are secrets)."""
        if not self.chat_urls:
            return self
        return self.model_copy(update={"chat_urls": [mask_chat_url(url) for url in self.chat_urls]})


def chat_url_scheme(url: str) -> str:
    """The Apprise scheme of a chat URL, lower-cased (`discord` for `discord://...`)."""
    return url.split("://", 1)[0].lower()


def mask_chat_url(url: str) -> str:
    """`discord://…`: the scheme says which service; the rest (host, path, user) may be a token."""
    return f"{chat_url_scheme(url)}://…"


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=200, description="the browser's ECDH public key, base64url")
    auth: str = Field(min_length=1, max_length=100, description="the subscription's auth secret, base64url")


class PushSubscription(BaseModel):
    """A Web Push subscription exactly as the browser's `PushSubscription.toJSON()` gives it."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(
        max_length=2048,
        description="the push service URL for this browser (a public address)",
        json_schema_extra={"pattern": URL_REGEX},
    )
    keys: PushKeys
    expirationTime: JsonInt | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not _URL.fullmatch(value):
            raise ValueError("must be an http:// or https:// URL")
        return value
