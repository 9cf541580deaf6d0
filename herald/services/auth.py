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


# A key's id: the first characters of its hash. It names the key's quota bucket (herald/services/quota.py), in
# Redis and in ops alerts, without being anything a caller could authenticate with.
KEY_ID_CHARS = 16


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for; for an agent key also its id and its own quota (None: HERALD_AGENT_RATE/_BURST)."""

    kind: Kind
    subject: str
    key_id: str = ""
    rate: float | None = None
    burst: int | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id(hashed: str) -> str:
    return hashed[:KEY_ID_CHARS]


async def issue_token(
    store: Store, kind: Kind, subject: str, *, rate: float | None = None, burst: int | None = None
) -> str:
    """Create a token for `subject`, save its hash, and return the token itself (the only time it is seen). An
    agent key may carry its own quota (`rate` per second, `burst`); unset, the defaults apply."""
    token = PREFIXES[kind] + secrets.token_urlsafe(32)
    await store.tokens.save_token(token_hash(token), kind, subject, rate=rate, burst=burst)
    return token


async def resolve_token(store: Store, token: str | None) -> Principal | None:
    """The principal behind `token`, or None when it is missing, malformed or was never issued."""
    if not token or not token.startswith(tuple(PREFIXES.values())) or len(token) > 200:
        return None
    hashed = token_hash(token)
    found = await store.tokens.find_token(hashed)
    if found is None:
        return None
    kind: Kind = "user" if found.kind == "user" else "agent"
    return Principal(kind, found.subject, key_id(hashed), found.rate, found.burst)
