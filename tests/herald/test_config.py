"""Settings read the names Herald documents, and nothing else (HOME is not HERALD_HOME)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from herald.config import Settings, SettingsError, check_settings
from herald.models import ChannelName

NAMES = [
    "HERALD_HOME",
    "HERALD_DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "HERALD_TASK_QUEUE",
    "HERALD_FALLBACK_ORDER",
    "HERALD_WEBHOOK_SECRET",
    "TWILIO_FROM",
    "SENDGRID_API_KEY",
    "SMTP_URL",
    "HERALD_EMAIL_FROM",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_ignore_unrelated_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TASK_QUEUE", "not-ours")
    settings = Settings()
    assert settings.store.home == Path(".herald")
    assert settings.temporal.task_queue == "herald"
    assert settings.temporal_address == "localhost:7233"
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{(Path('.herald') / 'herald.db').resolve()}"
    assert settings.outbox_dir == Path(".herald") / "outbox"
    assert settings.webhook.webhook_secret is None


def test_design_names_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))
    monkeypatch.setenv("HERALD_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/test")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:7999")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "herald")
    monkeypatch.setenv("HERALD_TASK_QUEUE", "q1")
    monkeypatch.setenv("HERALD_WEBHOOK_SECRET", "whsec_abc")
    monkeypatch.setenv("TWILIO_FROM", "+14155550100")
    settings = Settings()
    assert settings.store.home == tmp_path
    assert settings.resolved_database_url == "postgresql+asyncpg://postgres@127.0.0.1/test"
    assert (settings.temporal_address, settings.temporal.namespace, settings.temporal.task_queue) == (
        "127.0.0.1:7999",
        "herald",
        "q1",
    )
    assert (
        settings.webhook.webhook_secret is not None
        and settings.webhook.webhook_secret.get_secret_value() == "whsec_abc"
    )
    assert "whsec_abc" not in repr(settings), "secrets never print"
    assert settings.twilio.sms_from == "+14155550100"


@pytest.mark.parametrize("value", ["email, sms", '["email", "sms"]'])
def test_fallback_order_as_comma_list_or_json(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HERALD_FALLBACK_ORDER", value)
    settings = Settings()
    assert settings.delivery.fallback_order == [ChannelName.email, ChannelName.sms]
    assert settings.delivery_policy().fallback_order == [ChannelName.email, ChannelName.sms]


def test_bad_fallback_channel_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_FALLBACK_ORDER", "email,fax")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["loc"][0] == "fallback_order"


def test_retry_settings_reach_the_delivery_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_RETRY_INITIAL_SECONDS", "1.5")
    monkeypatch.setenv("HERALD_RETRY_MAX_RETRIES", "5")
    monkeypatch.setenv("HERALD_DEDUP_WINDOW_SECONDS", "60")
    policy = Settings().delivery_policy()
    assert policy.retry.initial_interval_seconds == 1.5
    assert policy.retry.maximum_retries == 5
    assert policy.dedup_window_seconds == 60


# --- HERALD_EMAIL_FROM with SendGrid: checked before anything starts ---------------------------------------

BAD_SENDERS = ["herald@localhost", "not an address", "Herald <herald@localhost>", "@example.com"]


@pytest.mark.parametrize("sender", BAD_SENDERS)
def test_with_sendgrid_a_sender_sendgrid_refuses_stops_startup(sender: str) -> None:
    """Before, any HERALD_EMAIL_FROM was taken, and with SendGrid every email then failed with a 400."""
    settings = Settings.from_flat({"SENDGRID_API_KEY": "SG.key", "email_from": sender})
    with pytest.raises(SettingsError, match=r"^HERALD_EMAIL_FROM ") as info:
        check_settings(settings)
    assert "SENDGRID_API_KEY" in str(info.value)


def test_the_unset_default_is_named_as_the_default() -> None:
    with pytest.raises(SettingsError, match="HERALD_EMAIL_FROM is unset, and its default herald@localhost"):
        check_settings(Settings.from_flat({"SENDGRID_API_KEY": "SG.key"}))


@pytest.mark.parametrize("sender", ["herald@example.com", "Herald <herald@mail.example.com>"])
def test_a_real_sender_passes(sender: str) -> None:
    check_settings(Settings.from_flat({"SENDGRID_API_KEY": "SG.key", "email_from": sender}))


def test_without_sendgrid_the_default_sender_is_fine() -> None:
    """The outbox and a local SMTP server take herald@localhost: only SendGrid refuses it."""
    check_settings(Settings())
    check_settings(Settings.from_flat({"SMTP_URL": "smtp://127.0.0.1:25"}))


# --- Groups: every variable reaches its group -------------------------------------------------------------

SAMPLES = {bool: "true", int: "7", float: "2.5", str: "x-value", Path: "/tmp/x-value"}


def _sample(name: str) -> tuple[str, object]:
    from herald.config import ENVIRONMENT_VARIABLES

    group, field = ENVIRONMENT_VARIABLES[name]
    annotation = str(type(getattr(Settings(), group)).model_fields[field].annotation)
    if name == "HERALD_FALLBACK_ORDER":
        return "sms,email", [ChannelName.sms, ChannelName.email]
    if name == "HERALD_CHAT_SCHEMES":
        return "Discord, ntfys", ["discord", "ntfys"]
    if name == "HERALD_LOG_FORMAT":
        return "text", "text"
    for kind, raw in SAMPLES.items():
        if kind.__name__ in annotation or (kind is str and "SecretStr" in annotation):
            value: object = {bool: True, int: 7, float: 2.5, str: "x-value", Path: Path("/tmp/x-value")}[kind]
            return raw, value
    raise AssertionError(f"no sample for {name}: {annotation}")


def test_every_variable_is_in_the_readme() -> None:
    from herald.config import ENVIRONMENT_VARIABLES

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"


@pytest.mark.parametrize("name", sorted(__import__("herald.config").config.ENVIRONMENT_VARIABLES))
def test_each_group_reads_its_variables(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from herald.config import ENVIRONMENT_VARIABLES

    for other in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(other, raising=False)
    group, field = ENVIRONMENT_VARIABLES[name]
    raw, expected = _sample(name)
    monkeypatch.setenv(name, raw)
    value = getattr(getattr(Settings(), group), field)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    assert value == expected, f"{name} -> settings.{group}.{field}"


# --- Temporal's own names, the profile file, and the deprecated names ---------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_CLIENT_CERT_PATH", "tls_client_cert_path"),
        ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CLIENT_KEY_PATH", "tls_client_key_path"),
        ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "tls_server_ca_cert_path"),
    ],
)
def test_a_deprecated_temporal_name_still_works_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, old: str, new: str, field: str
) -> None:
    monkeypatch.delenv(new, raising=False)
    monkeypatch.setenv(old, "/etc/herald/file.pem")
    with caplog.at_level("WARNING", logger="herald.config"):
        temporal = Settings().temporal
    assert temporal.tls_file(field) == (Path("/etc/herald/file.pem"), old)
    assert f"{old} is deprecated and will be removed in the next release: set {new} instead" in caplog.text

    monkeypatch.setenv(new, "/etc/herald/file.pem")  # both, the same file: fine
    assert Settings().temporal.tls_file(field) == (Path("/etc/herald/file.pem"), new)
    monkeypatch.setenv(new, "/etc/herald/other.pem")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert f"{old} and {new} are both set, to different files" in str(caught.value)
