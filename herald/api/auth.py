"""Who may call what. `Authorization: Bearer <token>`: the admin key, an agent key or a user token.

Agent keys send notifications and events as their agent only; user tokens reach their user's own data;
`HERALD_ADMIN_KEY` may do everything, rules included. With `auth` off (`herald dev`) every call is allowed.
The decision is a pure function (`access_problem`); the dependencies below only gather its inputs.
Tokens are never echoed: a message names who may call, never what was sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from herald.adapters.store import Store
from herald.api.deps import Deps, UserId
from herald.api.errors import ApiError
from herald.config import Settings
from herald.services.auth import resolve_token

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="an agent key (`herald keys issue`), a user token (`herald tokens issue`) or HERALD_ADMIN_KEY",
)


@dataclass(frozen=True)
class Caller:
    """Who is calling: `anyone` when auth is off, else the admin, a user or an agent; an agent key also brings its
    id and its own quota (None: HERALD_AGENT_RATE / HERALD_AGENT_BURST), for herald/api/quota.py."""

    kind: Literal["anyone", "admin", "user", "agent"]
    subject: str | None = None
    key_id: str | None = None
    rate: float | None = None
    burst: int | None = None


ANYONE = Caller("anyone")
ADMIN = Caller("admin")


class AuthError(ApiError):
    """401 or 403; a 401 carries `WWW-Authenticate: Bearer` so clients know which scheme to use."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(status, code, message, field)
        self.headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}


def unauthorized(message: str) -> AuthError:
    return AuthError(401, "unauthorized", message)


MISSING_TOKEN = "a bearer token is required: Authorization: Bearer <token>"
UNKNOWN_TOKEN = "the bearer token is not one Herald issued (or it was issued against another database)"


def who_may(users: Iterable[str] = (), agents: Iterable[str] = ()) -> str:
    """ "a user token for ada, an agent key for support-agent or the admin key": who a 403 should send."""
    parts = [f"a user token for {u}" for u in users] + [f"an agent key for {a}" for a in agents]
    parts.append("the admin key")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def access_problem(
    caller: Caller | None, *, users: Iterable[str] = (), agents: Iterable[str] = (), field: str | None = None
) -> AuthError | None:
    """None when `caller` may act for one of `users` or `agents` (the admin always may), else the error to answer."""
    if caller is None:
        return unauthorized(MISSING_TOKEN)
    if caller.kind in ("anyone", "admin"):
        return None
    users, agents = list(users), list(agents)
    if caller.kind == "user" and caller.subject in users:
        return None
    if caller.kind == "agent" and caller.subject in agents:
        return None
    return AuthError(403, "forbidden", f"this needs {who_may(users, agents)}", field)


def authorize(
    caller: Caller | None, *, users: Iterable[str] = (), agents: Iterable[str] = (), field: str | None = None
) -> None:
    problem = access_problem(caller, users=users, agents=agents, field=field)
    if problem is not None:
        raise problem


def is_admin_key(settings: Settings, token: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the key."""
    admin = settings.api.admin_key.get_secret_value() if settings.api.admin_key is not None else ""
    return bool(admin) and hmac.compare_digest(token.encode(), admin.encode())


async def identify(settings: Settings, store: Store, token: str | None) -> Caller | None:
    """The caller behind `token`; None when there is no token. An unknown token is a 401 right away."""
    if not settings.api.auth:
        return ANYONE
    if not token:
        return None
    if is_admin_key(settings, token):
        return ADMIN
    principal = await resolve_token(store, token)
    if principal is None:
        raise unauthorized(UNKNOWN_TOKEN)
    if principal.kind == "agent":
        return Caller("agent", principal.subject, principal.key_id, principal.rate, principal.burst)
    return Caller(principal.kind, principal.subject)


async def current_caller(
    services: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """Resolve the caller once per request (FastAPI caches it); no token at all is a 401."""
    if not services.settings.api.auth:
        return ANYONE
    caller = await identify(services.settings, services.store, credentials.credentials if credentials else None)
    if caller is None:
        raise unauthorized(MISSING_TOKEN)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


async def require_admin(caller: CallerDep) -> None:
    authorize(caller)


async def require_path_user(user_id: UserId, caller: CallerDep) -> None:
    """Routes under /v1/users/{user_id}: that user's token or the admin key."""
    authorize(caller, users=[user_id], field="user_id")


AdminOnly = Depends(require_admin)
PathUserOnly = Depends(require_path_user)
