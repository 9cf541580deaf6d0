"""`herald mcp`: Herald as MCP tools, so any agent framework can notify people, ask them, and report events.

Tools: `notify_user`, `ask_user` (waits for the answer, reporting progress), `emit_event`, `notification_status`,
and `add_silence`, `list_silences`, `expire_silence` (silences of the key's own agent),
and the agent's heartbeats: `set_heartbeat`, `ping_heartbeat`, `list_heartbeats`, and its subscriptions:
`set_subscription`, `list_subscriptions`, `delete_subscription`.
Every tool speaks for one agent, named by an agent key (`herald keys issue <agent>`): over stdio the key
given at startup (HERALD_AGENT_KEY or --agent-key), over streamable HTTP the `Authorization: Bearer` key of
each request. A tool never acts as another agent. Keys are never logged or echoed: messages name the
setting or header, not its value. Tool inputs are validated by the same models as the API's.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from herald.adapters.codec import CodecConfigError, CodecError
from herald.adapters.netguard import UnsafeURL
from herald.adapters.store import Store
from herald.config import Settings
from herald.domain.silences import SilenceProblem, state_of
from herald.domain.subscriptions import state_of as subscription_state
from herald.domain.validation import describe
from herald.models import (
    AgentNotification,
    ChannelName,
    EmitResult,
    GroupDecision,
    HeartbeatList,
    HeartbeatPinged,
    HeartbeatSpec,
    MetricValue,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    Quorum,
    ResolveResult,
    SilenceInput,
    SilenceView,
    Subscription,
    SubscriptionEventType,
    SubscriptionInput,
    SubscriptionView,
    utcnow,
)
from herald.models.answers import Action, Answer
from herald.services.auth import Principal, resolve_token
from herald.services.quota import QuotaExceeded, QuotaSubject
from herald.services.rule_cache import RuleCache
from starter.client import HeartbeatNotFound, HeraldClient, NotificationIdTaken, ResolveTimeout

logger = logging.getLogger("herald.mcp")

Transport = Literal["stdio", "http"]
# The SDK injects the request's context into a tool parameter annotated with this type.
ToolContext = Context[Any, Any]

KEY_SETTING = "HERALD_AGENT_KEY"
KEY_HEADER = "Authorization"
# How often `ask_user` reports progress while it waits, and how long it waits when given no deadline.
DEFAULT_PROGRESS_SECONDS = 5.0
FIRST_PROGRESS_SECONDS = 0.5
DEFAULT_ASK_TIMEOUT_SECONDS = 3600
ASK_TIMEOUT_MAX_SECONDS = 7 * 24 * 3600
STATUS_QUERY_TIMEOUT = timedelta(seconds=5)


class ServeError(Exception):
    """The server can't start; the message names the setting to fix (never a key's value)."""


class AgentKeyError(ServeError):
    """The agent key is missing, unknown or not an agent's. The message names where the key comes from."""


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (any case), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class AgentKeys:
    """Which agent a tool call speaks for: the key resolved through the store on every call, so a key
    removed from the store stops working at once.

    `configured` is the startup key. Over stdio it is the only key. Over HTTP each request brings its own
    bearer key; a configured key then pins the server to that one key (any other is refused).
    """

    store: Store
    transport: Transport
    configured: str | None = None

    def _source(self) -> str:
        return f"{KEY_SETTING} (or --agent-key)" if self.transport == "stdio" else f"the {KEY_HEADER} header"

    async def agent_for(self, headers: Mapping[str, str] | None) -> str:
        """The agent id behind this call's key, or AgentKeyError saying what is wrong (never the key)."""
        return (await self.principal_for(headers)).subject

    async def principal_for(self, headers: Mapping[str, str] | None) -> Principal:
        """The agent key behind this call (its agent, id and quota), or AgentKeyError (never naming the key)."""
        if self.transport == "stdio":
            key = self.configured
        else:
            key = bearer_key(headers or {})
            if key is not None and self.configured is not None and not _same(key, self.configured):
                raise AgentKeyError(f"{KEY_HEADER}: this server takes only the agent key it was started with")
        if key is None:
            raise AgentKeyError(f"{self._source()}: an agent key is required (`herald keys issue <agent>` prints one)")
        principal = await resolve_token(self.store, key)
        if principal is None or principal.kind != "agent":
            raise AgentKeyError(f"{self._source()}: not an agent key Herald issued (`herald keys issue <agent>`)")
        return principal


def _same(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the key."""
    return hmac.compare_digest(a.encode(), b.encode())


def problems(exc: ValidationError) -> str:
    """A validation error as `field: problem` parts, never echoing the values (they may hold personal data)."""
    return "; ".join(str(problem) for problem in describe(exc.errors()))


def own_agent(agent_id: str, claimed: str | None) -> None:
    """A tool's optional `agent_id` may only repeat the key's agent: no tool acts as another agent."""
    if claimed is not None and claimed != agent_id:
        raise ToolError(f"agent_id: this server speaks for agent {agent_id}; it can't act as {claimed}")


def progress_message(notification_id: str, status: NotificationOutcome | None, respond_by: datetime) -> str:
    """What `ask_user` tells the agent while it waits: the live status and each channel's, never the text."""
    if status is None:
        return f"notification {notification_id}: starting; waiting for an answer until {respond_by.isoformat()}"
    channels = ", ".join(f"{c.value} {r.status.value}" for c, r in status.channels.items()) or "no channel yet"
    seen = f"; acknowledged via {status.acknowledged.channel.value}" if status.acknowledged else ""
    return (
        f"notification {notification_id}: {status.status.value} ({channels}){seen}; "
        f"waiting for {status.user_id}'s answer until {respond_by.isoformat()}"
    )


def ask_deadline(now: datetime, respond_by: datetime | None, timeout_seconds: int | None) -> datetime:
    """`respond_by`, or now + `timeout_seconds`, or now + the default timeout; refuses both at once."""
    if respond_by is not None and timeout_seconds is not None:
        raise ToolError("timeout_seconds: give respond_by or timeout_seconds, not both")
    if respond_by is not None:
        return respond_by
    return now + timedelta(seconds=DEFAULT_ASK_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds)


class NotifyResult(BaseModel):
    notification_id: str
    workflow_id: str


class AskResult(BaseModel):
    """How a question ended: `answered` with the person's choice, `expired` without one, or another final
    status (e.g. `no_channel` when nothing could reach the person)."""

    notification_id: str
    status: NotificationStatus
    answer: Answer | None = Field(
        default=None, description="the person's choice; its `text` holds their words for an action with input text"
    )
    label: str | None = Field(default=None, description="the chosen action's label")
    acknowledged: Answer | None = Field(default=None, description="the person's ack or snooze: seen, not answered")
    answers: list[Answer] = Field(
        default_factory=list, description="a question to a group: every member's answer (who, where, what, when)"
    )
    decision: GroupDecision | None = Field(
        default=None, description="a question to a group: the action decided and who chose it"
    )


class ChannelState(BaseModel):
    status: str
    attempts: int = Field(description="delivery attempts so far")
    last_error: str | None = None


class StatusResult(BaseModel):
    """A notification's status now: recorded if it finished, else live from its workflow."""

    notification_id: str
    status: NotificationStatus
    user_id: str
    priority: Priority
    channels: dict[str, ChannelState]
    respond_by: datetime | None = Field(default=None, description="a question takes answers until then")
    answer: Answer | None = Field(default=None, description="a question's answer")
    acknowledged: Answer | None = Field(default=None, description="the person's ack or snooze")


class HeraldTools:
    """The tools' behaviour, one method per tool; `build_server` registers thin wrappers around them."""

    def __init__(
        self, herald: HeraldClient, store: Store, keys: AgentKeys, progress_seconds: float = DEFAULT_PROGRESS_SECONDS
    ) -> None:
        self.herald = herald
        self.store = store
        self.keys = keys
        self.progress_seconds = progress_seconds
        self.rules = RuleCache(store)  # the server's own store: emit opens no second one

    async def agent(self, ctx: ToolContext) -> str:
        return (await self.caller(ctx)).subject

    async def caller(self, ctx: ToolContext) -> Principal:
        try:
            return await self.keys.principal_for(ctx.headers)
        except AgentKeyError as exc:
            raise ToolError(str(exc)) from None

    def quota(self, key: Principal) -> QuotaSubject | None:
        """The key's own bucket (the one the API charges too, shared through Redis), with its --rate/--burst."""
        if self.herald.quota is None:
            return None
        return self.herald.quota.for_key(key.key_id, key.subject, key.rate, key.burst)

    def notification(self, fields: dict[str, Any]) -> AgentNotification:
        """The notification the tool's arguments describe, validated by the API's own model."""
        try:
            return AgentNotification.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            raise ToolError(problems(exc)) from None

    async def notify(self, notification: AgentNotification, quota: QuotaSubject | None = None) -> NotifyResult:
        try:
            handle = await self.herald.notify(notification, quota=quota)
        except QuotaExceeded as exc:  # names the agent, its limits and the wait: "retry in N s"
            raise ToolError(str(exc)) from None
        except ValueError as exc:  # a respond_by already past, another agent's id, a CodecError: the message says which
            raise ToolError(str(exc)) from None
        except RPCError as exc:
            raise _temporal_unavailable(exc) from None
        return NotifyResult(notification_id=handle.notification_id, workflow_id=handle.workflow_id)

    async def ask(
        self, notification: AgentNotification, ctx: ToolContext, quota: QuotaSubject | None = None
    ) -> AskResult:
        """Start the question through `HeraldClient.ask` and wait for its outcome, reporting the live status
        every `progress_seconds`. If the call is cancelled, the question stays open: its workflow waits
        durably, and `notification_status` reads the answer later."""
        assert notification.respond_by is not None
        asking = asyncio.ensure_future(self.herald.ask(notification, quota=quota))
        handle = self.herald.get_handle(notification.notification_id)
        started = asyncio.get_running_loop().time()
        total = max((notification.respond_by - utcnow()).total_seconds(), 1.0)
        wait = min(FIRST_PROGRESS_SECONDS, self.progress_seconds)  # the first report soon after the start
        try:
            while True:
                done, _ = await asyncio.wait({asking}, timeout=wait)
                if done:
                    break
                wait = self.progress_seconds
                try:
                    live: NotificationOutcome | None = await handle.status(rpc_timeout=STATUS_QUERY_TIMEOUT)
                except RPCError:
                    live = None  # not started yet, or Temporal slow: say so and keep waiting
                if live is not None and live.agent_id != notification.agent_id:
                    raise _taken(notification)
                elapsed = min(asyncio.get_running_loop().time() - started, total * 0.999)
                message = progress_message(notification.notification_id, live, notification.respond_by)
                await ctx.report_progress(elapsed, total, message)
            outcome = asking.result()
        except QuotaExceeded as exc:
            raise ToolError(str(exc)) from None
        except ValueError as exc:  # a respond_by already past (names the field), or a CodecError (names the setting)
            raise ToolError(str(exc)) from None
        except RPCError as exc:
            raise _temporal_unavailable(exc) from None
        finally:
            asking.cancel()
        if outcome.agent_id != notification.agent_id:
            raise _taken(notification)
        answer = outcome.answer
        label = next((a.label for a in notification.actions if answer and a.id == answer.action_id), None)
        return AskResult(
            notification_id=outcome.notification_id,
            status=outcome.status,
            answer=answer,
            label=label,
            acknowledged=outcome.acknowledged,
            answers=outcome.answers,
            decision=outcome.decision,
        )

    async def emit(
        self, agent_id: str, metrics: dict[str, MetricValue], event_id: str | None, quota: QuotaSubject | None = None
    ) -> EmitResult:
        try:
            return await self.herald.emit(agent_id, metrics, event_id=event_id, rules=self.rules, quota=quota)
        except QuotaExceeded as exc:
            raise ToolError(str(exc)) from None
        except ValidationError as exc:
            raise ToolError(problems(exc)) from None
        except CodecError as exc:  # what the workers encrypted, this server can't read: the message says what to set
            raise ToolError(str(exc)) from None
        except RPCError as exc:
            raise _temporal_unavailable(exc) from None

    async def resolve(self, agent_id: str, dedup_key: str) -> ResolveResult:
        try:
            return await self.herald.resolve(agent_id, dedup_key, by=f"agent:{agent_id}")
        except ValueError as exc:  # a dedup_key out of bounds, named
            raise ToolError(str(exc)) from None
        except ResolveTimeout as exc:
            raise ToolError(str(exc)) from None
        except RPCError as exc:
            raise _temporal_unavailable(exc) from None

    async def status(self, agent_id: str, notification_id: str) -> StatusResult:
        """The recorded outcome, else the live one; another agent's notification reads as unknown."""
        outcome = await self.store.notifications.get_outcome(notification_id)
        if outcome is None:
            try:
                outcome = await self.herald.get_handle(notification_id).status(rpc_timeout=STATUS_QUERY_TIMEOUT)
            except CodecError as exc:
                raise ToolError(str(exc)) from None
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise _temporal_unavailable(exc) from None
        if outcome is None or outcome.agent_id != agent_id:
            raise ToolError(f"notification_id: agent {agent_id} sent no notification {notification_id}")
        channels = {
            channel.value: ChannelState(status=r.status.value, attempts=r.attempt_count, last_error=r.error_type)
            for channel, r in outcome.channels.items()
        }
        return StatusResult(
            notification_id=outcome.notification_id,
            status=outcome.status,
            user_id=outcome.user_id,
            priority=outcome.priority,
            channels=channels,
            respond_by=outcome.respond_by,
            answer=outcome.answer,
            acknowledged=outcome.acknowledged,
        )

    # --- silences: the key's own agent's -------------------------------------------------------------------

    async def add_silence(self, agent_id: str, fields: dict[str, Any]) -> SilenceView:
        """A silence of this agent's notifications (matchers.agent_id is the key's agent, always)."""
        try:
            body = SilenceInput.model_validate(fields)
        except ValidationError as exc:
            raise ToolError(problems(exc)) from None
        try:
            made = await self.herald.add_silence(body, created_by=f"agent:{agent_id}", store=self.store)
        except SilenceProblem as exc:
            raise ToolError(str(exc)) from None
        return _view(made)

    async def list_silences(self, agent_id: str, include_expired: bool) -> SilenceList:
        found = await self.herald.list_silences(agent_id=agent_id, include_expired=include_expired, store=self.store)
        return SilenceList(silences=[_view(s) for s in found])

    async def expire_silence(self, agent_id: str, silence_id: str) -> SilenceView:
        """Only a silence this agent made: one naming another agent reads as unknown, and one a person or the
        admin put on this agent stays (its maker lifts it)."""
        silence = await self.store.silences.get_silence(silence_id)
        if silence is None or silence.matchers.agent_id != agent_id:
            raise ToolError(f"silence_id: agent {agent_id} has no silence {silence_id}")
        if silence.created_by != f"agent:{agent_id}":
            raise ToolError(f"silence_id: only its maker ({silence.created_by}) or the admin expires this silence")
        expired = await self.herald.expire_silence(silence_id, store=self.store)
        if expired is None:
            raise ToolError(f"silence_id: agent {agent_id} has no silence {silence_id}")
        return _view(expired)

    # --- subscriptions: the key's own agent's -------------------------------------------------------------

    async def set_subscription(self, agent_id: str, name: str, fields: dict[str, Any]) -> SubscriptionView:
        """A subscription to this agent's events (agent_id is the key's agent, always); one of another owner's
        name is refused as taken."""
        try:
            body = SubscriptionInput.model_validate({**fields, "agent_id": agent_id})
        except ValidationError as exc:
            raise ToolError(problems(exc)) from None
        before = await self.store.subscriptions.get_subscription(name)
        if before is not None and before.agent_id != agent_id:
            raise ToolError(f"name: the subscription {name} is not this agent's")
        try:
            made = await self.herald.set_subscription(name, body, owner=f"agent:{agent_id}", store=self.store)
        except UnsafeURL as exc:
            raise ToolError(f"url {exc}") from None
        return _subscription_view(made)

    async def list_subscriptions(self, agent_id: str) -> SubscriptionList:
        found = await self.herald.subscriptions(agent_id=agent_id, store=self.store)
        return SubscriptionList(subscriptions=[_subscription_view(s) for s in found])

    async def delete_subscription(self, agent_id: str, name: str) -> str:
        found = await self.store.subscriptions.get_subscription(name)
        if (
            found is None
            or found.agent_id != agent_id
            or not await self.herald.delete_subscription(name, store=self.store)
        ):
            raise ToolError(f"name: agent {agent_id} has no subscription {name}")
        return f"deleted subscription {name}"

    async def set_heartbeat(self, fields: dict[str, Any]) -> HeartbeatSpec:
        try:
            spec = HeartbeatSpec.model_validate(fields)
        except ValidationError as exc:
            raise ToolError(problems(exc)) from None
        try:
            await self.herald.set_heartbeat(spec)
        except RPCError as exc:
            raise _temporal_unavailable(exc, "send it again") from None
        return spec

    async def ping(self, agent_id: str, name: str) -> HeartbeatPinged:
        try:
            return await self.herald.ping(agent_id, name)
        except HeartbeatNotFound as exc:
            raise ToolError(f"name: {exc} (set_heartbeat creates it)") from None
        except RPCError as exc:
            raise _temporal_unavailable(exc, "ping again") from None

    async def heartbeats(self, agent_id: str) -> HeartbeatList:
        try:
            return HeartbeatList(heartbeats=await self.herald.heartbeats(agent_id))
        except CodecError as exc:
            raise ToolError(str(exc)) from None
        except RPCError as exc:
            raise _temporal_unavailable(exc, "retry") from None


class SilenceList(BaseModel):
    silences: list[SilenceView]


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionView]


def _subscription_view(subscription: Subscription) -> SubscriptionView:
    return SubscriptionView(**subscription.model_dump(), state=subscription_state(subscription))


def _view(silence: Any) -> SilenceView:
    return SilenceView(**silence.model_dump(), state=state_of(silence, utcnow()))


def _taken(notification: AgentNotification) -> ToolError:
    """Another agent's notification holds this id: its answer is not this agent's to read."""
    return ToolError(str(NotificationIdTaken(notification.notification_id)))


def _temporal_unavailable(exc: RPCError, retry: str = "retry with the same notification_id") -> ToolError:
    return ToolError(f"Temporal did not answer ({exc.status.name}); {retry}")


# Tool parameters, described for the model that calls them. Values are checked by AgentNotification.
UserId = Annotated[str | None, Field(description="the person to reach (their Herald user id), or give `group`")]
ToGroup = Annotated[
    str | None, Field(description="instead of user_id: a group (each member gets their own notification)")
]
QuorumArg = Annotated[
    Quorum | None,
    Field(
        description='with group: "first" (the first answer decides, the default) or {"action": "approve", "count": 2} '
        "(decided once that many members chose it; any other action decides at once)"
    ),
]
Title = Annotated[str, Field(description="one line, at most 200 characters")]
Body = Annotated[str, Field(description="the message body, at most 10 KB")]
Channels = Annotated[list[ChannelName] | None, Field(description="channels to try, in order (default: push, email)")]
NotificationId = Annotated[
    str | None, Field(description="your own id for this notification: sending it again is a no-op (safe retries)")
]
DedupKey = Annotated[str | None, Field(description="collapse notifications sharing this key within 5 minutes")]
Metadata = Annotated[dict[str, Any] | None, Field(description="JSON the notification carries (at most 16 KB)")]
GroupKey = Annotated[
    str | None,
    Field(
        description="deliver it together with your other notifications to this person with the same key, in one "
        "message (the first waits group_wait_seconds for the others); critical ones never wait"
    ),
]
GroupWait = Annotated[int | None, Field(description="with group_key: seconds the first waits for others (30)")]
GroupInterval = Annotated[int | None, Field(description="with group_key: seconds between the group's messages (300)")]
EscalationPolicyName = Annotated[
    str | None,
    Field(
        description="escalate along this escalation policy instead of notifying user_id (who stays its owner): its "
        "steps' people in turn until one acks"
    ),
]
HeartbeatName = Annotated[str, Field(description="the heartbeat's name: 1-64 of a-z, 0-9, - and _")]
ClaimedAgent = Annotated[str | None, Field(description="optional: this server's own agent id (any other is refused)")]


def build_server(tools: HeraldTools, *, instructions: str | None = None) -> MCPServer[Any]:
    """The MCP server with Herald's tools, each a thin wrapper over `HeraldTools`."""
    server: MCPServer[Any] = MCPServer(
        "herald",
        title="Herald",
        instructions=instructions
        or "Notify people, ask them a question and wait for the answer, and report events to Herald's rules.",
    )

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=True))
    async def notify_user(
        ctx: ToolContext,
        title: Title,
        user_id: UserId = None,
        group: ToGroup = None,
        body: Body = "",
        priority: Priority = Priority.medium,
        channels: Channels = None,
        notification_id: NotificationId = None,
        dedup_key: DedupKey = None,
        metadata: Metadata = None,
        agent_id: ClaimedAgent = None,
        group_key: GroupKey = None,
        group_wait_seconds: GroupWait = None,
        group_interval_seconds: GroupInterval = None,
        escalation_policy: EscalationPolicyName = None,
    ) -> NotifyResult:
        """Send a person a notification through Herald (deduplicated, per their preferences, with retries and
        fallbacks; with a group_key, together with the others of its group). Returns at once with the notification
        id; read the outcome with `notification_status`."""
        key = await tools.caller(ctx)
        agent = key.subject
        own_agent(agent, agent_id)
        fields = {"agent_id": agent, "user_id": user_id, "group": group, "title": title, "body": body}
        fields["priority"] = priority
        extra: dict[str, Any] = {"channels": channels, "notification_id": notification_id, "dedup_key": dedup_key}
        extra |= {"metadata": metadata}
        extra |= {
            "group_key": group_key,
            "group_wait_seconds": group_wait_seconds,
            "group_interval_seconds": group_interval_seconds,
        }
        extra |= {"escalation_policy": escalation_policy}
        return await tools.notify(tools.notification(fields | extra), tools.quota(key))

    @server.tool(annotations=ToolAnnotations(open_world_hint=True))
    async def ask_user(
        ctx: ToolContext,
        question: Annotated[str, Field(description="the question, one line, at most 200 characters")],
        actions: Annotated[
            list[Action],
            Field(
                description="the answers the person may choose, 1 to 5, e.g. [{id: approve, label: Approve}]; "
                'an action with input "text" is answered in the person\'s own words, e.g. '
                "[{id: reply, label: Reply, input: text}]"
            ),
        ],
        body: Body = "",
        respond_by: Annotated[
            datetime | None, Field(description="answers are taken until then (ISO 8601 with a time zone)")
        ] = None,
        timeout_seconds: Annotated[
            int | None,
            Field(
                ge=1,
                le=ASK_TIMEOUT_MAX_SECONDS,
                description=f"instead of respond_by: wait this long (default {DEFAULT_ASK_TIMEOUT_SECONDS})",
            ),
        ] = None,
        priority: Priority = Priority.high,
        channels: Channels = None,
        notification_id: NotificationId = None,
        metadata: Metadata = None,
        agent_id: ClaimedAgent = None,
        user_id: UserId = None,
        group: ToGroup = None,
        quorum: QuorumArg = None,
    ) -> AskResult:
        """Ask a person a question and wait for their answer (or the deadline). Progress notifications report
        the live delivery status while it waits. Returns `answered` with the chosen action (and, for an action
        with input text, the person's words in `answer.text`), or `expired`."""
        key = await tools.caller(ctx)
        agent = key.subject
        own_agent(agent, agent_id)
        if not actions:
            raise ToolError("actions: must offer at least one answer")
        deadline = ask_deadline(utcnow(), respond_by, timeout_seconds)
        fields = {
            "agent_id": agent,
            "user_id": user_id,
            "group": group,
            "quorum": quorum,
            "title": question,
            "body": body,
            "priority": priority,
            "actions": actions,
            "respond_by": deadline,
        }
        extra = {"channels": channels, "notification_id": notification_id, "metadata": metadata}
        return await tools.ask(tools.notification(fields | extra), ctx, tools.quota(key))

    @server.tool(annotations=ToolAnnotations(open_world_hint=True))
    async def emit_event(
        ctx: ToolContext,
        metrics: Annotated[
            dict[str, MetricValue],
            Field(description="what you observed: name -> number, boolean or string, e.g. {error_rate: 0.07}"),
        ],
        event_id: Annotated[
            str | None, Field(description="your own id for this event: sending it again fires nothing twice")
        ] = None,
        agent_id: ClaimedAgent = None,
    ) -> EmitResult:
        """Report metrics to Herald's trigger rules. Rules that match notify their people (once per cooldown);
        the result lists the rules that fired, with their notification ids, and those cooling down."""
        key = await tools.caller(ctx)
        agent = key.subject
        own_agent(agent, agent_id)
        return await tools.emit(agent, metrics, event_id, tools.quota(key))

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=True))
    async def resolve_alert(
        ctx: ToolContext,
        dedup_key: Annotated[str, Field(description="the dedup_key your notifications about the problem carried")],
        agent_id: ClaimedAgent = None,
    ) -> ResolveResult:
        """The problem is over: every open notification you sent with this dedup_key ends `resolved`, those already
        delivered too (retries, holds, escalations and answer waits stop; what was delivered is told). Nothing open
        is a no-op that says so."""
        agent = await tools.agent(ctx)
        own_agent(agent, agent_id)
        return await tools.resolve(agent, dedup_key)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def notification_status(
        ctx: ToolContext,
        notification_id: Annotated[str, Field(description="the id notify_user, ask_user or emit_event returned")],
    ) -> StatusResult:
        """A notification's status: `pending` while it runs, then delivered, answered, expired, grouped, failed, ...;
        each channel with its attempts; the answer for a question."""
        return await tools.status(await tools.agent(ctx), notification_id)

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    async def add_silence(
        ctx: ToolContext,
        ends_at: Annotated[datetime, Field(description="when the silence ends (ISO 8601 with a time zone, future)")],
        comment: Annotated[str, Field(description="why, 1-500 characters")],
        user_id: Annotated[str | None, Field(description="only notifications to this person")] = None,
        rule: Annotated[str | None, Field(description="only those this rule fired")] = None,
        dedup_key: Annotated[str | None, Field(description="only those with this dedup_key")] = None,
        max_priority: Annotated[
            Priority, Field(description="the highest priority silenced (critical gets through unless critical)")
        ] = Priority.high,
        starts_at: Annotated[datetime | None, Field(description="when it starts (default now)")] = None,
        agent_id: ClaimedAgent = None,
    ) -> SilenceView:
        """Silence your own notifications for a while (a maintenance window, a known incident): those the
        silence matches end `silenced`, logged and not delivered. Returns the silence with its id."""
        agent = await tools.agent(ctx)
        own_agent(agent, agent_id)
        matchers = {"agent_id": agent, "user_id": user_id, "rule": rule, "dedup_key": dedup_key}
        fields = {
            "matchers": {k: v for k, v in matchers.items() if v is not None} | {"max_priority": max_priority},
            "ends_at": ends_at,
            "comment": comment,
        }
        if starts_at is not None:
            fields["starts_at"] = starts_at
        return await tools.add_silence(agent, fields)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_silences(
        ctx: ToolContext,
        include_expired: Annotated[bool, Field(description="also silences that have ended")] = False,
    ) -> SilenceList:
        """The silences of your notifications, newest first: pending and active ones, each with its state."""
        return await tools.list_silences(await tools.agent(ctx), include_expired)

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False))
    async def expire_silence(
        ctx: ToolContext,
        silence_id: Annotated[str, Field(description="the id add_silence returned")],
    ) -> SilenceView:
        """End one of your silences now: your notifications are delivered again from then on."""
        return await tools.expire_silence(await tools.agent(ctx), silence_id)

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=True))
    async def set_subscription(
        ctx: ToolContext,
        name: Annotated[str, Field(description="the subscription's name (letters, digits, . _ : @ -)")],
        url: Annotated[str, Field(description="the http(s) URL that receives Standard Webhooks-signed POSTs")],
        events: Annotated[
            list[SubscriptionEventType],
            Field(description="the event types: notification.delivered, ..., heartbeat.missed"),
        ],
    ) -> SubscriptionView:
        """Subscribe a URL to what happens to your notifications and heartbeats: signed POSTs, in order, with ids,
        the channel, the status and the time (never content). Saving again enables a disabled subscription."""
        return await tools.set_subscription(await tools.agent(ctx), name, {"url": url, "events": events})

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_subscriptions(ctx: ToolContext) -> SubscriptionList:
        """Your subscriptions, each enabled or disabled (after it kept failing) with its failures and last error."""
        return await tools.list_subscriptions(await tools.agent(ctx))

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False))
    async def delete_subscription(
        ctx: ToolContext, name: Annotated[str, Field(description="the name set_subscription saved")]
    ) -> str:
        """Delete one of your subscriptions: nothing more is posted to it."""
        return await tools.delete_subscription(await tools.agent(ctx), name)

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=True))
    async def set_heartbeat(
        ctx: ToolContext,
        name: HeartbeatName,
        every_seconds: Annotated[int, Field(description="you promise to check in at least this often (seconds)")],
        user_id: Annotated[str, Field(description="whom a missed check-in notifies (their Herald user id)")],
        grace_seconds: Annotated[int, Field(description="how late a check-in may be before it counts as missed")] = 0,
        priority: Priority = Priority.high,
        channels: Channels = None,
    ) -> HeartbeatSpec:
        """Start (or change) a heartbeat for yourself: check in with `ping_heartbeat` at least every
        `every_seconds`; if you don't (plus `grace_seconds`), Herald tells `user_id` "<name> missed its check-in"
        once, and "<name> checked in again" at your next ping."""
        agent = await tools.agent(ctx)
        notify = {"user_id": user_id, "priority": priority, **({"channels": channels} if channels else {})}
        fields = {"name": name, "agent_id": agent, "every_seconds": every_seconds, "grace_seconds": grace_seconds}
        return await tools.set_heartbeat(fields | {"notify": notify})

    @server.tool(annotations=ToolAnnotations(open_world_hint=True))
    async def ping_heartbeat(ctx: ToolContext, name: HeartbeatName) -> HeartbeatPinged:
        """Check in for your heartbeat `name` (set_heartbeat made it): you are alive and on schedule."""
        return await tools.ping(await tools.agent(ctx), name)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_heartbeats(ctx: ToolContext) -> HeartbeatList:
        """Your heartbeats: each one's state (up or missed), last check-in and when the next one is due."""
        return await tools.heartbeats(await tools.agent(ctx))

    return server


class RequireAgentKey:
    """ASGI wrapper for the HTTP transport: a request without a valid agent key gets a 401 before any MCP
    session exists (the error shape of Herald's API). Tools check the key again on every call."""

    def __init__(self, app: ASGIApp, keys: AgentKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                await self.keys.agent_for(headers)
            except AgentKeyError as exc:
                body = {"error": {"code": "unauthorized", "message": str(exc), "field": KEY_HEADER}}
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": json.dumps(body).encode()})
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer[Any], keys: AgentKeys, host: str = "127.0.0.1") -> ASGIApp:
    """The streamable HTTP app at `/mcp`, behind the agent key check (serve it with lifespan on: the SDK's
    session manager starts there). On a loopback host the SDK also refuses other Host and Origin headers."""
    return RequireAgentKey(server.streamable_http_app(host=host), keys)


async def serve(
    settings: Settings,
    *,
    transport: Transport,
    host: str = "127.0.0.1",
    port: int = 8765,
    progress_seconds: float = DEFAULT_PROGRESS_SECONDS,
) -> None:
    """Connect to Temporal and the store, check the agent key, and serve until stopped.

    Over stdio a missing or unknown key stops the server before it serves (AgentKeyError); over HTTP every
    request is checked, and a configured key pins the server to that one key.
    """
    configured = settings.api.agent_key.get_secret_value().strip() if settings.api.agent_key is not None else ""
    store = await Store.open(settings.resolved_database_url)
    try:
        keys = AgentKeys(store, transport, configured or None)
        agent = await keys.agent_for(None) if transport == "stdio" else None
        try:
            herald = await HeraldClient.connect(settings)
        except (CodecError, CodecConfigError) as exc:  # the workers' keys aren't this server's, or a bad key list
            raise ServeError(str(exc)) from None
        except RuntimeError as exc:  # the SDK's "Failed client connect: ..."
            raise ServeError(f"TEMPORAL_ADDRESS: no Temporal at {settings.temporal_address} ({exc})") from None
        try:
            tools = HeraldTools(herald, store, keys, progress_seconds)
            about = f" You act as agent {agent}." if agent else ""
            server = build_server(
                tools,
                instructions="Notify people, ask them a question and wait for the answer, and report events to "
                f"Herald's rules.{about}",
            )
            if transport == "stdio":
                logger.info("herald mcp: serving agent %s on stdio", agent)
                await server.run_stdio_async()
                return
            config = uvicorn.Config(
                http_app(server, keys, host), host=host, port=port, log_config=None, access_log=False, lifespan="on"
            )
            logger.info("herald mcp: serving on http://%s:%d/mcp", host, port)
            await uvicorn.Server(config).serve()
        finally:
            await herald.aclose()
    finally:
        await store.close()
