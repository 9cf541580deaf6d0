"""Bearer tokens: user tokens (`herald tokens issue <user>`) and agent keys (`herald keys issue <agent>`).

A token is shown once when issued; the store keeps only its SHA-256, so a leaked database leaks no tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from herald.adapters.store import Store

Kind = Literal["user", "agent"]
PREFIXES: dict[Kind, str] = {"user": "hrt_", "agent": "hrk_"}


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for."""

    kind: Kind
    subject: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(store: Store, kind: Kind, subject: str) -> str:
    """Create a token for `subject`, save its hash, and return the token itself (the only time it is seen)."""
    token = PREFIXES[kind] + secrets.token_urlsafe(32)
    await store.tokens.save_token(token_hash(token), kind, subject)
    return token


async def resolve_token(store: Store, token: str | None) -> Principal | None:
    """The principal behind `token`, or None when it is missing, malformed or was never issued."""
    if not token or not token.startswith(tuple(PREFIXES.values())) or len(token) > 200:
        return None
    found = await store.tokens.find_token(token_hash(token))
    if found is None:
        return None
    kind, subject = found
    return Principal("user" if kind == "user" else "agent", subject)
