"""SmtpChannel drives the real aiosmtplib client against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.smtp import (
    SmtpChannel,
    SmtpTarget,
    build_email,
    classify_smtp_error,
    message_id,
    parse_smtp_url,
)
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority
from tests.fakes.smtp import RecordingHandler, free_port, start_smtp

SENDER = "herald@example.com"
RECIPIENT = "alice@example.com"
# Every character that means something in a URL, so the channel must URL-decode what it logs in with.
USERNAME = "ops@example.com"
PASSWORD = "p@ss:w/rd%#?&+ x"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Controller, RecordingHandler]]:
    handler = RecordingHandler(username=USERNAME, password=PASSWORD)
    controller = start_smtp(handler)
    yield controller, handler
    controller.stop()


@pytest.fixture
def smtp(smtp_server: tuple[Controller, RecordingHandler]) -> RecordingHandler:
    """The shared server's handler, with nothing recorded and no scripted refusal left from another test."""
    smtp_server[1].reset()
    return smtp_server[1]


@pytest.fixture
def smtp_port(smtp_server: tuple[Controller, RecordingHandler]) -> int:
    return int(smtp_server[0].port)


def url(port: int, username: str = USERNAME, password: str = PASSWORD) -> str:
    return f"smtp://{quote(username, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}"


def channel_for(port: int, **kwargs: object) -> SmtpChannel:
    options: dict[str, object] = {"sender": SENDER, "link_base": "https://herald.example.com", "timeout": 5.0}
    options.update(kwargs)
    return SmtpChannel(url(port), **options)  # type: ignore[arg-type]


def outbound(email: str | None = RECIPIENT, **fields: object) -> OutboundMessage:
    values: dict[str, object] = {
        "notification_id": "n-123",
        "agent_id": "deploy-bot",
        "user_id": "alice",
        "title": "Deploy failed",
        "body": "The build broke on main.",
        "priority": Priority.high,
        "metadata": {"service": "api"},
    }
    values.update(fields)
    notification = AgentNotification.model_validate(values)
    return OutboundMessage(notification, ChannelName.email, f"{notification.workflow_id}/email", Contact(email=email))


# --- what the server receives ----------------------------------------------------------------------


async def test_the_server_receives_a_multipart_message_with_herald_headers(
    smtp: RecordingHandler, smtp_port: int
) -> None:
    result = await channel_for(smtp_port).send(outbound())

    [received] = smtp.received
    assert received.mail_from == SENDER
    assert received.rcpt_tos == [RECIPIENT]
    email = received.message
    assert email["From"] == SENDER
    assert email["To"] == RECIPIENT
    assert email["Subject"] == "[HIGH] Deploy failed"
    assert email["Message-ID"] == message_id("notification/n-123/email", SENDER)
    assert result.provider_message_id == email["Message-ID"]
    assert email["X-Herald-Notification-Id"] == "n-123"
    assert email["X-Herald-Idempotency-Key"] == "notification/n-123/email"
    assert email["Date"] is not None
    assert email.get_content_type() == "multipart/alternative"
    parts = list(email.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, html = (part.get_content() for part in parts)
    assert "The build broke on main." in text and "The build broke on main." in html
    assert "https://herald.example.com/v1/notifications/n-123" in text
    assert "deploy-bot" in html


async def test_html_part_escapes_agent_text(smtp: RecordingHandler, smtp_port: int) -> None:
    await channel_for(smtp_port).send(outbound(title="<script>x()</script>", body="<b>hi</b>", metadata={"k": "<i>"}))

    text, html = (part.get_content() for part in smtp.received[0].message.iter_parts())
    for raw in ("<script>x()</script>", "<b>hi</b>", "<i>"):
        assert raw in text
        assert raw not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "&lt;b&gt;hi&lt;/b&gt;" in html


async def test_logs_in_with_the_url_decoded_credentials(smtp: RecordingHandler, smtp_port: int) -> None:
    await channel_for(smtp_port).send(outbound())
    assert smtp.logins == [(USERNAME, PASSWORD)]
    assert smtp.received[0].authenticated


async def test_a_url_without_credentials_does_not_log_in(smtp: RecordingHandler, smtp_port: int) -> None:
    await SmtpChannel(f"smtp://127.0.0.1:{smtp_port}", sender=SENDER).send(outbound())
    assert smtp.logins == []
    assert len(smtp.received) == 1
    assert not smtp.received[0].authenticated


async def test_a_resend_carries_the_same_message_id(smtp: RecordingHandler, smtp_port: int) -> None:
    channel = channel_for(smtp_port)
    await channel.send(outbound())
    await channel.send(outbound())
    first, second = (r.message["Message-ID"] for r in smtp.received)
    assert first == second


async def test_missing_email_is_contact_missing_and_sends_nothing(smtp: RecordingHandler, smtp_port: int) -> None:
    with pytest.raises(ContactMissing):
        await channel_for(smtp_port).send(outbound(email=None))
    assert smtp.received == [] and smtp.logins == []


# --- classification against the server ------------------------------------------------------------


@pytest.mark.parametrize("reply", ["550 5.1.1 <alice@example.com>: no such user", "554 5.7.1 rejected"])
async def test_a_5xx_refusal_of_the_recipient_is_permanent(smtp: RecordingHandler, smtp_port: int, reply: str) -> None:
    smtp.rcpt_reply = reply
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel_for(smtp_port).send(outbound())
    assert caught.value.type_name == "SmtpRejected"
    assert reply[:3] in str(caught.value)
    assert RECIPIENT not in str(caught.value)  # the server's reply text quotes the address; the error doesn't


@pytest.mark.parametrize("reply", ["450 4.2.1 mailbox busy", "452 4.5.3 too many recipients"])
async def test_a_4xx_refusal_of_the_recipient_is_transient(smtp: RecordingHandler, smtp_port: int, reply: str) -> None:
    smtp.rcpt_reply = reply
    with pytest.raises(TransientDeliveryError) as caught:
        await channel_for(smtp_port).send(outbound())
    assert caught.value.type_name == "SmtpDeferred"


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("451 4.3.0 try again later", TransientDeliveryError),
        ("421 4.3.2 shutting down", TransientDeliveryError),
        ("550 5.7.1 message refused", PermanentDeliveryError),
        ("554 5.6.0 content rejected", PermanentDeliveryError),
    ],
)
async def test_a_refusal_at_data_is_classified_by_code(
    smtp: RecordingHandler, smtp_port: int, reply: str, kind: type[Exception]
) -> None:
    smtp.data_reply = reply
    with pytest.raises(kind) as caught:
        await channel_for(smtp_port).send(outbound())
    assert reply[:3] in str(caught.value)


async def test_refused_credentials_are_permanent(smtp: RecordingHandler, smtp_port: int) -> None:
    channel = SmtpChannel(url(smtp_port, password="wrong-password"), sender=SENDER)
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(outbound())
    assert caught.value.type_name == "SmtpAuthFailed"
    assert "535" in str(caught.value)
    assert "wrong-password" not in str(caught.value)
    assert smtp.received == []


async def test_connection_refused_is_transient() -> None:
    channel = SmtpChannel(f"smtp://127.0.0.1:{free_port()}", sender=SENDER, timeout=2.0)
    with pytest.raises(TransientDeliveryError) as caught:
        await channel.send(outbound())
    assert caught.value.type_name == "SmtpUnreachable"


def self_signed_context(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


async def test_smtps_speaks_tls_and_refuses_an_unverifiable_certificate(tmp_path: Path) -> None:
    handler = RecordingHandler()
    controller = start_smtp(handler, ssl_context=self_signed_context(tmp_path))
    try:
        channel = SmtpChannel(f"smtps://herald:secret@127.0.0.1:{controller.port}", sender=SENDER, timeout=2.0)
        with pytest.raises(PermanentDeliveryError) as caught:
            await channel.send(outbound())
    finally:
        controller.stop()
    assert caught.value.type_name == "SmtpTlsFailed"
    assert handler.logins == [] and handler.received == []


# --- parse_smtp_url ----------------------------------------------------------------------------------


def test_parse_smtp_url_reads_every_part() -> None:
    target = parse_smtp_url("smtp://mailer:hunter2@mail.example.com:2525")
    assert target == SmtpTarget(
        host="mail.example.com", port=2525, use_tls=False, username="mailer", password="hunter2"
    )


def test_parse_smtp_url_defaults_the_port_by_scheme() -> None:
    assert parse_smtp_url("smtp://mail.example.com").port == 587
    smtps = parse_smtp_url("smtps://mail.example.com")
    assert (smtps.port, smtps.use_tls) == (465, True)
    assert (smtps.username, smtps.password) == (None, None)


def test_parse_smtp_url_url_decodes_the_credentials() -> None:
    target = parse_smtp_url(url(25))
    assert (target.username, target.password) == (USERNAME, PASSWORD)
    assert (target.host, target.port) == ("127.0.0.1", 25)


def test_parse_smtp_url_keeps_an_empty_password() -> None:
    target = parse_smtp_url("smtp://mailer:@mail.example.com")
    assert (target.username, target.password) == ("mailer", "")


def test_smtp_target_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtp://mailer:hunter2@mail.example.com"))


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("http://mailer:hunter2@mail.example.com", "smtp:// or smtps://"),
        ("mailer:hunter2@mail.example.com:25", "smtp:// or smtps://"),
        ("smtp://mailer:hunter2@", "no host"),
        ("smtp://mailer:hunter2@:25", "no host"),
        ("smtp://mailer:hunter2@mail.example.com:port", "not a valid URL"),
        ("smtp://mailer:hunter2@mail.example.com:99999", "not a valid URL"),
        ("smtp://:hunter2@mail.example.com", "no user name"),
        ("", "smtp:// or smtps://"),
    ],
)
def test_parse_smtp_url_errors_name_the_problem_never_the_password(bad: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_smtp_url(bad)
    assert "SMTP_URL" in str(caught.value)
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)
    # No chained error either: a traceback would print it, and urllib's errors may quote the URL.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_a_bad_url_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="SMTP_URL") as caught:
        SmtpChannel("ftp://mailer:hunter2@mail.example.com", sender=SENDER)
    assert "hunter2" not in str(caught.value)


# --- pure helpers -----------------------------------------------------------------------------------


def test_message_id_is_stable_per_key_and_distinct_across_keys() -> None:
    first = message_id("notification/a/email", SENDER)
    assert first == message_id("notification/a/email", SENDER)
    assert first != message_id("notification/b/email", SENDER)
    assert first.startswith("<herald.") and first.endswith("@example.com>")
    assert message_id("k", "Herald <alerts@ops.example.org>").endswith("@ops.example.org>")
    assert message_id("k", "not-an-address").endswith("@herald.invalid>")


def test_build_email_puts_a_title_with_line_breaks_on_one_subject_line() -> None:
    message = outbound(title="Deploy\r\nBcc: evil@example.com")
    email = build_email(message, SENDER, "text", "<p>html</p>", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert email["Subject"] == "[HIGH] Deploy Bcc: evil@example.com"
    assert email["Bcc"] is None
    assert email["Date"] == "Thu, 02 Jan 2025 03:04:05 +0000"


def test_build_email_needs_an_address() -> None:
    with pytest.raises(ContactMissing):
        build_email(outbound(email=None), SENDER, "t", "h", dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    ("error", "kind", "type_name"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", RECIPIENT)]),
            PermanentDeliveryError,
            "SmtpRejected",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(452, "later", RECIPIENT)]),
            TransientDeliveryError,
            "SmtpDeferred",
        ),
        (aiosmtplib.SMTPSenderRefused(553, "bad sender", SENDER), PermanentDeliveryError, "SmtpRejected"),
        (aiosmtplib.SMTPDataError(451, "later"), TransientDeliveryError, "SmtpDeferred"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), PermanentDeliveryError, "SmtpAuthFailed"),
        (aiosmtplib.SMTPConnectResponseError(421, "busy"), TransientDeliveryError, "SmtpDeferred"),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), TransientDeliveryError, "SmtpTimeout"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientDeliveryError, "SmtpTimeout"),
        (aiosmtplib.SMTPConnectError("refused"), TransientDeliveryError, "SmtpUnreachable"),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientDeliveryError, "SmtpUnreachable"),
        (ConnectionResetError(), TransientDeliveryError, "SmtpUnreachable"),
        (aiosmtplib.SMTPException("no AUTH offered"), PermanentDeliveryError, "SmtpMisconfigured"),
    ],
)
def test_classify_smtp_error(error: Exception, kind: type[Exception], type_name: str) -> None:
    classified = classify_smtp_error(error)
    assert type(classified) is kind
    assert classified.type_name == type_name
    assert RECIPIENT not in str(classified) and SENDER not in str(classified)
