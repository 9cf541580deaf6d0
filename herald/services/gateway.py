"""The Gateway: what the HTTP API needs of Temporal, and what crossing to Temporal can raise.

The API is handed a Gateway (or a way to connect one) and never imports the agents' client: `HeraldClient`
(starter/client.py) is the Gateway the entry points hand it, and a test may hand it another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NamedTuple, Protocol

from herald.adapters.store import Store
from herald.config import Settings
from herald.models import (
    AgentEvent,
    AgentNotification,
    Answer,
    AnswerChannel,
    Clearing,
    EmitResult,
    Firing,
    HeartbeatPinged,
    HeartbeatSpec,
    HeartbeatStatus,
    NotificationOutcome,
    ResolveResult,
)


class NotificationIdTaken(ValueError):
    """The notification_id names another agent's notification: nothing was started, and the id can't be reused."""

    def __init__(self, notification_id: str) -> None:
        super().__init__(f"notification_id: {notification_id} is another agent's notification; choose another id")
        self.notification_id = notification_id


class HeartbeatNotFound(LookupError):
    """No heartbeat of that name is watched for that agent (never set, or deleted)."""

    def __init__(self, agent_id: str, name: str) -> None:
        super().__init__(f"agent {agent_id} has no heartbeat {name}")
        self.agent_id, self.name = agent_id, name


# How long `respond` waits for the notification's workflow to take an answer before it gives up (AnswerTimeout).
RESPOND_RPC_TIMEOUT = timedelta(seconds=10)


class AnswerTimeout(Exception):
    """Temporal did not confirm an answer in time: no worker took it (none running, or all busy). It was not
    refused, and it may still be taken once a worker picks the notification up, so retry; a retry with the same
    `update_id` is the same answer, never a second one. The message is safe to show."""

    def __init__(self, notification_id: str) -> None:
        super().__init__(
            f"notification {notification_id}: no worker confirmed the answer in time; it was not refused, retry shortly"
        )
        self.notification_id = notification_id


class ResolveTimeout(Exception):
    """Temporal did not confirm a resolve in time: no worker took it. Retry: resolving twice is resolving once (the
    second finds nothing open that the first resolved). The message is safe to show."""

    def __init__(self, agent_id: str, resolved: list[str]) -> None:
        done = f" ({len(resolved)} resolved before it)" if resolved else ""
        super().__init__(f"{agent_id}: no worker confirmed the resolve in time{done}; retry shortly")
        self.agent_id, self.resolved = agent_id, resolved


class AnswerRefused(Exception):
    """An answer Herald did not take, and why. `code`: unknown_action, invalid_text, not_recipient, too_late,
    already_answered, already_acknowledged, closed (the notification has finished), not_found. The reason is
    safe to show."""

    def __init__(self, code: str, reason: str, *, recorded: bool = False) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.recorded = recorded  # the running workflow kept it in the outcome's refused_answers


class NotificationParties(NamedTuple):
    """A notification's user and agent; None where its workflow was started without the search attribute."""

    user_id: str | None
    agent_id: str | None


class StartedNotification(Protocol):
    """A notification whose workflow is running (or ran): its ids."""

    @property
    def notification_id(self) -> str: ...

    @property
    def workflow_id(self) -> str: ...


class Gateway(Protocol):
    """Temporal, as the API uses it. Each method's contract is HeraldClient's of the same name."""

    async def notify(self, notification: AgentNotification) -> StartedNotification:
        """Start the notification once per notification_id; NotificationIdTaken when the id is another agent's."""
        ...

    def without_fallback(self) -> Gateway:
        """The same gateway, but notifications it starts never fall back to another channel."""
        ...

    async def status(self, notification_id: str, rpc_timeout: timedelta | None = None) -> NotificationOutcome:
        """The notification's state right now (RPCError NOT_FOUND when Temporal has no such workflow)."""
        ...

    async def parties(self, notification_id: str, rpc_timeout: timedelta | None = None) -> NotificationParties:
        """Whom the notification is for and from, by its workflow's search attributes: Temporal's server answers,
        no worker needed (RPCError NOT_FOUND when there is no such workflow)."""
        ...

    async def respond(
        self,
        notification_id: str,
        action_id: str,
        user_id: str,
        channel: AnswerChannel | str = AnswerChannel.api,
        *,
        store: Store | None = None,
        update_id: str | None = None,
        rpc_timeout: timedelta = RESPOND_RPC_TIMEOUT,
        text: str | None = None,
    ) -> Answer:
        """Answer for `user_id` (with `text` for an action answered in words): the answer as recorded,
        AnswerRefused with the reason, or AnswerTimeout."""
        ...

    async def fire(
        self, event: AgentEvent, firings: list[Firing], clearing: list[Clearing] | None = None
    ) -> EmitResult:
        """Fire an event's already-matched rules."""
        ...

    async def resolve(self, agent_id: str, dedup_key: str, *, by: str | None = None) -> ResolveResult:
        """Resolve every open notification of `agent_id` sent with `dedup_key`; ResolveTimeout when no worker took it."""
        ...

    async def check_health(self) -> None:
        """Raise unless Temporal answers."""
        ...

    async def set_heartbeat(self, spec: HeartbeatSpec) -> None:
        """Create or change the heartbeat (no worker needed: Temporal keeps it until one runs)."""
        ...

    async def ping(self, agent_id: str, name: str) -> HeartbeatPinged:
        """Check in; HeartbeatNotFound when the agent has no such heartbeat."""
        ...

    async def heartbeats(self, agent_id: str | None = None) -> list[HeartbeatStatus]:
        """The watched heartbeats (one agent's, or all), each as its workflow says now (this needs a worker)."""
        ...

    async def delete_heartbeat(self, agent_id: str, name: str) -> None:
        """Stop watching; HeartbeatNotFound when there is no such heartbeat."""
        ...


# How an entry point lets the API connect its own Gateway, lazily, on the first request that needs Temporal.
Connect = Callable[[Settings], Awaitable[Gateway]]
