"""Binding a Telegram chat to a user: `herald telegram link <user>` makes a one-time code, the person sends
`/start <code>` to the bot (or opens t.me/<bot>?start=<code>), and the webhook stores that chat on their contact.

Pure: the code, its store key (a hash: the store never holds a live code) and the parsing of `/start`.
"""

from __future__ import annotations

import hashlib
import re
import secrets

START_COMMAND = "/start"
# Telegram's deep-link parameter: at most 64 characters of A-Z a-z 0-9 _ -.
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
LINK_CODE_TTL_SECONDS = 24 * 3600
CODE_KEY_PREFIX = "telegram-link:"


def new_link_code() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


def code_key(code: str) -> str:
    """What the store keeps of a code (64 characters at most, no answer link's nonce looks like it)."""
    return CODE_KEY_PREFIX + hashlib.sha256(code.encode()).hexdigest()[: 64 - len(CODE_KEY_PREFIX)]


def parse_start(text: str) -> str | None:
    """The code of `/start <code>` (also `/start@BotName <code>`), or None."""
    parts = text.strip().split()
    if len(parts) != 2 or parts[0].split("@", 1)[0] != START_COMMAND:
        return None
    return parts[1] if CODE_PATTERN.fullmatch(parts[1]) else None
