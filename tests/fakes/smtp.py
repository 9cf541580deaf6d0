"""A real SMTP server on 127.0.0.1 (aiosmtpd, in its own thread) that records what it accepts.

It offers AUTH without TLS, checks one user name and password, and can be told to answer RCPT or DATA
with a given reply ("550 5.1.1 no such user") to stand in for a refusing server.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        message: EmailMessage = message_from_bytes(self.content, policy=policy.default)
        return message


@dataclass
class RecordingHandler:
    """aiosmtpd calls handle_RCPT and handle_DATA; a reply string ends that command with that code."""

    username: str = "herald"
    password: str = "secret"
    rcpt_reply: str | None = None
    data_reply: str | None = None
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.rcpt_reply = self.data_reply = None
        self.received.clear()
        self.logins.clear()

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (self.username, self.password), handled=False)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        content = envelope.original_content or envelope.content
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), content, bool(session.authenticated))
        )
        return "250 2.0.0 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_smtp(handler: RecordingHandler, ssl_context: ssl.SSLContext | None = None) -> Controller:
    """Start aiosmtpd on a free loopback port (its own thread and loop); `controller.port` says where."""
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=ssl_context,
        authenticator=handler.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    return controller
