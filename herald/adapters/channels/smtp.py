"""Email through your own mail server: `SMTP_URL=smtp[s]://user:pass@host:port`, sent with aiosmtplib.

smtps:// connects with TLS from the start; smtp:// upgrades with STARTTLS when the server offers it.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from herald.adapters.channels.base import OutboundMessage, SendResult
from herald.adapters.channels.render import (
    email_bodies,
    email_subject,
    notification_link,
    preferences_link,
    unsubscribe_headers,
)
from herald.domain.errors import ContactMissing, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpTarget:
    """Read SMTP_URL. Errors name the problem and never repeat the URL: it carries the password."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL is not a valid URL (expected smtp[s]://user:pass@host:port)") from None
    if scheme not in DEFAULT_PORTS:
        raise ValueError("SMTP_URL must start with smtp:// or smtps:// (expected smtp[s]://user:pass@host:port)")
    if not host:
        raise ValueError("SMTP_URL has no host (expected smtp[s]://user:pass@host:port)")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("SMTP_URL has a password but no user name")
    return SmtpTarget(
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        use_tls=scheme == "smtps",
        username=username,
        password=password,
    )


def message_id(idempotency_key: str, sender: str) -> str:
    """The same Message-ID for every attempt of one (notification, channel), so a resend is recognisable."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    if not (at and _DOMAIN.fullmatch(domain)):
        domain = "herald.invalid"
    return f"<herald.{digest}@{domain}>"


def build_email(message: OutboundMessage, sender: str, text: str, html: str, date: datetime) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML) with Herald's tracing headers."""
    if not message.contact.email:
        raise ContactMissing("the user has no email address on file")
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.contact.email
    email["Subject"] = email_subject(message)
    email["Date"] = format_datetime(date)
    email["Message-ID"] = message_id(message.idempotency_key, sender)
    email["X-Herald-Notification-Id"] = message.notification.notification_id
    email["X-Herald-Idempotency-Key"] = message.idempotency_key
    for name, value in unsubscribe_headers(message).items():  # RFC 8058 one-click unsubscribe
        email[name] = value
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return email


def classify_smtp_error(exc: Exception) -> DeliveryError:
    """4xx replies, timeouts and dropped connections retry; 5xx replies, refused credentials and unsupported
    features are permanent. Only reply codes are kept: servers quote addresses in their reply text."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        code = max(codes) if codes else 550
        return _by_code(code, "refused the recipient")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return PermanentDeliveryError(
            f"SMTP server refused the credentials in SMTP_URL ({exc.code})", type_name="SmtpAuthFailed"
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _by_code(exc.code, "refused the recipient")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _by_code(exc.code, "refused the sender")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _by_code(exc.code, "refused the message")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, "answered")
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        return PermanentDeliveryError("SMTP server's TLS certificate failed verification", type_name="SmtpTlsFailed")
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors too
        return TransientDeliveryError("SMTP server timed out", type_name="SmtpTimeout")
    if isinstance(exc, (ConnectionError, OSError)):  # SMTPConnectError and SMTPServerDisconnected included
        return TransientDeliveryError(f"SMTP server unreachable ({type(exc).__name__})", type_name="SmtpUnreachable")
    if isinstance(exc, aiosmtplib.SMTPException):
        # No AUTH offered, no usable AUTH method, and the like: configuration, which retrying won't fix.
        return PermanentDeliveryError(
            f"SMTP server cannot do what SMTP_URL asks ({type(exc).__name__})", type_name="SmtpMisconfigured"
        )
    return TransientDeliveryError(f"SMTP send failed ({type(exc).__name__})", type_name="SmtpFailed")


def _by_code(code: int, what: str) -> DeliveryError:
    if 500 <= code < 600:
        return PermanentDeliveryError(f"SMTP server {what} ({code})", type_name="SmtpRejected")
    return TransientDeliveryError(f"SMTP server {what} ({code})", type_name="SmtpDeferred")


class SmtpChannel:
    name = ChannelName.email

    def __init__(self, url: str, *, sender: str, link_base: str | None = None, timeout: float = 10.0) -> None:
        self._target = parse_smtp_url(url)
        self._sender = sender
        self._envelope_sender = parseaddr(sender)[1] or sender
        self._link_base = link_base
        self._timeout = timeout

    async def send(self, message: OutboundMessage) -> SendResult:
        if not message.contact.email:
            raise ContactMissing("the user has no email address on file")
        link = notification_link(self._link_base, message.notification.notification_id)
        text, html = email_bodies(message, link, preferences_link(self._link_base))
        email = build_email(message, self._sender, text, html, datetime.now(UTC))
        target = self._target
        try:
            await aiosmtplib.send(
                email,
                sender=self._envelope_sender,
                recipients=[message.contact.email],
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                start_tls=None,  # STARTTLS when offered, unless already on TLS
                timeout=message.provider_timeout(self._timeout),
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise classify_smtp_error(exc) from None
        return SendResult(provider_message_id=email["Message-ID"])
