"""HeraldClient: how an agent starts notifications and reads their outcome, through Temporal."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from herald import search
from herald.codec import codec_data_converter, codec_from_keys
from herald.config import Settings
from herald.events import match_event, plan_firings
from herald.models import (
    AgentEvent,
    AgentNotification,
    DeliveryPolicy,
    EmitResult,
    EventRequest,
    Firing,
    MetricValue,
    MonitorState,
    NotificationOutcome,
    NotificationRequest,
    utcnow,
)
from herald.rule_cache import RuleCache
from herald.store import Store
from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow


class TemporalSettingsError(ValueError):
    """A TEMPORAL_TLS_* / TEMPORAL_API_KEY setting is unusable; the message names the variable."""


def _read_setting_file(variable: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TemporalSettingsError(f"{variable}: no such file {path}") from None
    except IsADirectoryError:
        raise TemporalSettingsError(f"{variable}: {path} is a directory, not a PEM file") from None
    except PermissionError:
        raise TemporalSettingsError(f"{variable}: {path} is not readable by this user") from None


def temporal_api_key(settings: Settings) -> str | None:
    """TEMPORAL_API_KEY, sent as `Authorization: Bearer` on every call (Temporal Cloud); empty counts as unset."""
    key = settings.temporal_api_key.get_secret_value().strip() if settings.temporal_api_key is not None else ""
    return key or None


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The TLS settings for `Client.connect`: mTLS with TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY, the server's CA
    from TEMPORAL_TLS_CA, its name from TEMPORAL_TLS_SERVER_NAME; TLS with system roots for TEMPORAL_API_KEY
    (Temporal Cloud) or TEMPORAL_TLS=true; plain gRPC otherwise (the dev server), or with TEMPORAL_TLS=false."""
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        given, missing = ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")
        if cert is None:
            given, missing = missing, given
        raise TemporalSettingsError(f"{given} is set but {missing} is not: mTLS needs both files")
    ca, server_name = settings.temporal_tls_ca, settings.temporal_tls_server_name
    tls_options = [name for name, value in (("TEMPORAL_TLS_CERT", cert), ("TEMPORAL_TLS_CA", ca)) if value is not None]
    if server_name:
        tls_options.append("TEMPORAL_TLS_SERVER_NAME")
    if settings.temporal_tls is False:
        if tls_options:
            raise TemporalSettingsError(f"TEMPORAL_TLS is false but {', '.join(tls_options)} is set: unset one of them")
        return False
    if not tls_options:
        return settings.temporal_tls is True or temporal_api_key(settings) is not None
    return TLSConfig(
        server_root_ca_cert=_read_setting_file("TEMPORAL_TLS_CA", ca) if ca is not None else None,
        domain=server_name or None,
        client_cert=_read_setting_file("TEMPORAL_TLS_CERT", cert) if cert is not None else None,
        client_private_key=_read_setting_file("TEMPORAL_TLS_KEY", key) if key is not None else None,
    )


async def connect_temporal(settings: Settings) -> Client:
    """A Temporal client with Herald's data conversion (pydantic, encrypted with HERALD_CODEC_KEYS) and the
    connection settings (namespace, TLS, API key); the one way the worker, the starter and the API connect."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=codec_data_converter(codec_from_keys(settings.codec_keys)),
        tls=temporal_tls(settings),
        api_key=temporal_api_key(settings),
    )


# How often `send_event` asks the monitor, and the first pause between tries (doubling each time).
UPDATE_ATTEMPTS = 6
UPDATE_BACKOFF_SECONDS = 0.1
_RETRYABLE_RPC = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.DEADLINE_EXCEEDED}
)


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError) or (
        isinstance(exc, RPCError) and exc.status in _RETRYABLE_RPC
    )


class NotificationHandle:
    """A started notification: read its live status or wait for its outcome."""

    def __init__(self, notification_id: str, handle: WorkflowHandle[NotificationWorkflow, NotificationOutcome]) -> None:
        self.notification_id = notification_id
        self.workflow_id = handle.id
        self._handle = handle

    async def outcome(self) -> NotificationOutcome:
        """Wait for the workflow to finish and return what reached whom."""
        return await self._handle.result()

    async def status(self, rpc_timeout: timedelta | None = None) -> NotificationOutcome:
        """The per-channel state right now (works on finished notifications too)."""
        return await self._handle.query(NotificationWorkflow.status, rpc_timeout=rpc_timeout)


class HeraldClient:
    """Start notifications as workflows `notification/<notification_id>`.

    Sending the same notification_id twice starts one workflow: the second call gets the first's handle,
    so an agent may retry `notify` safely.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        policy: DeliveryPolicy | None = None,
        *,
        rules: RuleCache | None = None,
        database_url: str | None = None,
    ) -> None:
        self.temporal = client
        self.task_queue = task_queue
        self.policy = policy or DeliveryPolicy()
        self._rules = rules
        self._database_url = database_url
        self._store: Store | None = None

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> HeraldClient:
        settings = settings or Settings()
        return cls(
            await connect_temporal(settings),
            settings.task_queue,
            settings.delivery_policy(),
            database_url=settings.resolved_database_url,
        )

    async def emit(
        self,
        agent_id: str,
        metrics: Mapping[str, MetricValue],
        *,
        event_id: str | None = None,
        rules: RuleCache | None = None,
    ) -> EmitResult:
        """Report what an agent observed. Rules are evaluated here, in process: an event that matches
        nothing costs no Temporal or database work. A match goes to `monitor/<agent_id>`, which applies
        each rule's cooldown and starts the notifications; the result says what fired and what cooled down.

        Pass the same `event_id` again to retry safely: the monitor recognises it.
        """
        event = AgentEvent.model_validate(
            {"agent_id": agent_id, "metrics": dict(metrics), **({"event_id": event_id} if event_id else {})}
        )
        firings = match_event(await (rules or await self._rule_cache()).book(), event)
        if not firings:
            return EmitResult(event_id=event.event_id)
        return await self.fire(event, firings)

    async def fire(self, event: AgentEvent, firings: list[Firing]) -> EmitResult:
        """Send an event's already-matched rules to its monitor (`emit` without the matching)."""
        plans = plan_firings(event.agent_id, event.event_id, firings, utcnow())
        request = EventRequest(agent_id=event.agent_id, event_id=event.event_id, plans=plans, policy=self.policy)
        return await self.send_event(request)

    async def send_event(self, request: EventRequest, *, state: MonitorState | None = None) -> EmitResult:
        """Hand an event's matched rules to `monitor/<agent_id>`, starting it if it isn't running.

        The event id is the update id: Temporal drops a repeat, so a retry can't fire a rule twice.
        `state` seeds a monitor that isn't running yet (tests use it to rotate runs sooner).
        """
        for attempt in range(1, UPDATE_ATTEMPTS + 1):
            start = WithStartWorkflowOperation(  # one per call: the SDK refuses to reuse an operation
                MonitorWorkflow.run,
                state or MonitorState(agent_id=request.agent_id),
                id=f"monitor/{request.agent_id}",
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            try:
                return await self.temporal.execute_update_with_start_workflow(
                    MonitorWorkflow.event, request, start_workflow_operation=start, id=request.event_id
                )
            except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
                # Worth asking again, and safe (the same update id attaches to the same update): no worker
                # answered in time, the update was aborted by a worker shutting down, or too many updates
                # were in flight on the monitor at once (a burst).
                if attempt == UPDATE_ATTEMPTS or not _retryable(exc):
                    raise
                await asyncio.sleep(UPDATE_BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _rule_cache(self) -> RuleCache:
        """The rules from the store, opened on first use (agents that only `notify` never open it)."""
        if self._rules is None:
            if self._database_url is None:
                raise RuntimeError(
                    "emit needs the rules: use HeraldClient.connect(settings) or pass rules=RuleCache(...)"
                )
            self._store = await Store.open(self._database_url)
            self._rules = RuleCache(self._store)
        return self._rules

    async def aclose(self) -> None:
        """Close the rule store `emit` opened, if any."""
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def notify(self, notification: AgentNotification) -> NotificationHandle:
        workflow_id = notification.workflow_id
        try:
            handle = await self.temporal.start_workflow(
                NotificationWorkflow.run,
                NotificationRequest(notification=notification, policy=self.policy),
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=search.notification_attributes(notification),
                static_summary=search.notification_summary(notification),
            )
        except WorkflowAlreadyStartedError:
            handle = self.temporal.get_workflow_handle_for(NotificationWorkflow.run, workflow_id)
        return NotificationHandle(notification.notification_id, handle)

    def get_handle(self, notification_id: str) -> NotificationHandle:
        handle = self.temporal.get_workflow_handle_for(NotificationWorkflow.run, f"notification/{notification_id}")
        return NotificationHandle(notification_id, handle)
