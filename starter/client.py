"""HeraldClient: how an agent starts notifications and reads their outcome, through Temporal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, DataSource
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from herald.adapters.codec import CodecError, CodecMismatch, codec_data_converter, codec_for
from herald.adapters.store import Store
from herald.config import DEFAULT_TEMPORAL_ADDRESS, DEFAULT_TEMPORAL_NAMESPACE, Settings, TemporalSettings
from herald.domain import answers, resolve, search
from herald.domain.events import clearing_rules, in_plan_order, match_event, plan_firings, split_by_cooldown
from herald.domain.silences import new_silence
from herald.domain.validation import describe
from herald.models import (
    SNOOZE_ACTION,
    SNOOZE_SECONDS,
    AgentEvent,
    AgentNotification,
    Answer,
    AnswerChannel,
    AnswerRequest,
    Clearing,
    DeliveryPolicy,
    EmitResult,
    EventRequest,
    FiredRule,
    Firing,
    FiringPlan,
    HeartbeatConfig,
    HeartbeatPing,
    HeartbeatPinged,
    HeartbeatRun,
    HeartbeatSpec,
    HeartbeatStatus,
    MetricValue,
    MonitorState,
    NotificationOutcome,
    NotificationRequest,
    NotificationStatus,
    RefusedAnswer,
    ResolveBody,
    ResolveRequest,
    ResolveResult,
    RetentionRequest,
    Silence,
    SilenceInput,
    Snooze,
    Subscription,
    SubscriptionInput,
    heartbeat_workflow_id,
    notification_workflow_id,
    utcnow,
)
from herald.services.gateway import (
    RESPOND_RPC_TIMEOUT,
    AnswerRefused,
    AnswerTimeout,
    HeartbeatNotFound,
    NotificationIdTaken,
    NotificationParties,
    ResolveTimeout,
)
from herald.services.quota import AgentQuota, QuotaExceeded, QuotaSubject
from herald.services.resolve import resolve_ended, resolve_workflow
from herald.services.rule_cache import RuleCache
from herald.services.subscriptions import save_subscription
from workflows.heartbeat import HeartbeatWorkflow
from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow
from workflows.options import notification_start

# Raised by HeraldClient and defined with the Gateway (herald/services/gateway.py); agents import them from here.
__all__ = [
    "AnswerRefused",
    "AnswerTimeout",
    "HeartbeatNotFound",
    "HeraldClient",
    "NotificationHandle",
    "NotificationIdTaken",
    "QuotaExceeded",
    "ResolveTimeout",
    "TemporalSettingsError",
    "check_codec_matches",
    "connect_temporal",
]


class TemporalSettingsError(ValueError):
    """A TEMPORAL_* setting (or the profile file) is unusable; the message names the variable."""


def _read_setting_file(variable: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TemporalSettingsError(f"{variable}: no such file {path}") from None
    except IsADirectoryError:
        raise TemporalSettingsError(f"{variable}: {path} is a directory, not a PEM file") from None
    except PermissionError:
        raise TemporalSettingsError(f"{variable}: {path} is not readable by this user") from None


def _api_key(settings: Settings) -> str | None:
    key = settings.temporal.api_key.get_secret_value().strip() if settings.temporal.api_key is not None else ""
    return key or None


def _as_variables(settings: Settings) -> dict[str, str]:
    """settings.temporal as the TEMPORAL_* variables envconfig reads: these override the profile file's values."""
    temporal = settings.temporal
    variables: dict[str, str] = {}
    if temporal.address:
        variables["TEMPORAL_ADDRESS"] = temporal.address
    if temporal.namespace:
        variables["TEMPORAL_NAMESPACE"] = temporal.namespace
    if (key := _api_key(settings)) is not None:
        variables["TEMPORAL_API_KEY"] = key
    if temporal.tls is not None:
        variables["TEMPORAL_TLS"] = "true" if temporal.tls else "false"
    for field in ("tls_client_cert_path", "tls_client_key_path", "tls_server_ca_cert_path"):
        path, _ = temporal.tls_file(field)
        if path is not None:
            variables[TemporalSettings.variable(field)] = str(path)
    if temporal.tls_server_name:
        variables["TEMPORAL_TLS_SERVER_NAME"] = temporal.tls_server_name
    if temporal.profile:
        variables["TEMPORAL_PROFILE"] = temporal.profile
    return variables


def temporal_profile(settings: Settings) -> ClientConfigProfile:
    """The connection as temporalio.envconfig builds it: the profile (TEMPORAL_PROFILE, else `default`) from the
    TOML file (TEMPORAL_CONFIG_FILE, else Temporal's default place, unless TEMPORAL_DISABLE_CONFIG_FILE), with
    the variables in settings.temporal over it."""
    temporal = settings.temporal
    if temporal.tls_disable_host_verification:
        raise TemporalSettingsError(
            "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: the Temporal Python SDK cannot turn host verification off; "
            "set TEMPORAL_TLS_SERVER_NAME to the name on the server's certificate instead"
        )
    config_file = temporal.config_file
    if config_file is not None and not temporal.disable_config_file and not config_file.is_file():
        raise TemporalSettingsError(f"TEMPORAL_CONFIG_FILE: no such file {config_file}")
    try:
        return ClientConfigProfile.load(
            profile=temporal.profile,
            config_source=None if temporal.disable_config_file else config_file,
            disable_file=temporal.disable_config_file,
            override_env_vars=_as_variables(settings),
        )
    except Exception as exc:  # the SDK's ConfigError: a profile that isn't there, a file that isn't TOML
        where = f"TEMPORAL_CONFIG_FILE {config_file}" if config_file is not None else "the Temporal config file"
        raise TemporalSettingsError(f"TEMPORAL_PROFILE / {where}: {exc}") from None


def temporal_api_key(settings: Settings) -> str | None:
    """TEMPORAL_API_KEY (or the profile's api_key), sent as `Authorization: Bearer` on every call (Temporal
    Cloud); empty counts as unset."""
    key = (temporal_profile(settings).api_key or "").strip()
    return key or None


def _tls_source(
    settings: Settings, field: str, source: DataSource | None, profile_key: str
) -> tuple[str, bytes] | None:
    """A TLS file's bytes, and the name of what set it: the variable, or the profile file's key."""
    if source is None:
        return None
    path, variable = settings.temporal.tls_file(field)
    if path is None:  # from the profile file
        variable = f"the profile's tls.{profile_key}"
    if isinstance(source, Path):
        return variable, _read_setting_file(variable, source)
    return variable, source.encode() if isinstance(source, str) else source


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The TLS settings for `Client.connect`: mTLS with TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH, the server's
    CA from TEMPORAL_TLS_SERVER_CA_CERT_PATH, its name from TEMPORAL_TLS_SERVER_NAME (or the profile's tls
    table); TLS with system roots for an API key (Temporal Cloud) or TEMPORAL_TLS=true; plain gRPC otherwise
    (the dev server), or with TEMPORAL_TLS=false."""
    profile = temporal_profile(settings)
    tls = profile.tls or ClientConfigTLS()
    cert_name = settings.temporal.tls_file("tls_client_cert_path")[1]
    key_name = settings.temporal.tls_file("tls_client_key_path")[1]
    ca_name = settings.temporal.tls_file("tls_server_ca_cert_path")[1]
    if (tls.client_cert is None) != (tls.client_private_key is None):
        given, missing = (cert_name, key_name) if tls.client_cert is not None else (key_name, cert_name)
        if given in ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"):  # name the missing one as the given one is named
            missing = {"TEMPORAL_TLS_CERT": "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_KEY": "TEMPORAL_TLS_CERT"}[given]
        raise TemporalSettingsError(f"{given} is set but {missing} is not: mTLS needs both files")
    options = [name for name, value in ((cert_name, tls.client_cert), (ca_name, tls.server_root_ca_cert)) if value]
    if tls.server_name:
        options.append("TEMPORAL_TLS_SERVER_NAME")
    if tls.disabled is True:
        if options:
            raise TemporalSettingsError(f"TEMPORAL_TLS is false but {', '.join(options)} is set: unset one of them")
        return False
    if not options:
        return tls.disabled is False or temporal_api_key(settings) is not None
    ca = _tls_source(settings, "tls_server_ca_cert_path", tls.server_root_ca_cert, "server_ca_cert")
    cert = _tls_source(settings, "tls_client_cert_path", tls.client_cert, "client_cert")
    key = _tls_source(settings, "tls_client_key_path", tls.client_private_key, "client_key")
    return TLSConfig(
        server_root_ca_cert=ca[1] if ca else None,
        domain=tls.server_name or None,
        client_cert=cert[1] if cert else None,
        client_private_key=key[1] if key else None,
    )


async def connect_temporal(settings: Settings, *, check_codec: bool = True) -> Client:
    """A Temporal client with Herald's data conversion (pydantic, encrypted with the keys `codec_for` finds:
    HERALD_CODEC_KEYS, else HERALD_HOME/codec.key) and the connection envconfig's profile describes (address,
    namespace, TLS, API key, gRPC metadata; `temporal_profile`); the one way the worker, the starter, the MCP
    server, the CLI and the API connect.

    With `check_codec` (all but `herald dev`, which makes its own key) a codec that can't read what the workers
    wrote stops here with CodecMismatch (`check_codec_matches`), not at the first outcome."""
    profile = temporal_profile(settings)
    client = await Client.connect(
        profile.address or DEFAULT_TEMPORAL_ADDRESS,
        namespace=profile.namespace or DEFAULT_TEMPORAL_NAMESPACE,
        data_converter=codec_data_converter(codec_for(settings)),
        tls=temporal_tls(settings),
        api_key=temporal_api_key(settings),
        rpc_metadata=dict(profile.grpc_meta),
    )
    if check_codec:
        await check_codec_matches(client, settings.retention.schedule_id)
    return client


async def check_codec_matches(client: Client, schedule_id: str) -> None:
    """Decode the one payload every Herald worker keeps in Temporal, the retention schedule's input (re-encrypted
    with the current key at each worker start): CodecMismatch when this client's keys can't read it (another key,
    or no key at all). No schedule yet (no worker ran), or none readable here, means nothing to compare."""
    try:
        described = await client.get_schedule_handle(schedule_id).describe()
    except RPCError:
        return
    action = described.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.args:
        return
    try:
        await client.data_converter.decode(list(action.args), [RetentionRequest])
    except CodecError as exc:
        raise CodecMismatch(exc, schedule_id) from None
    except Exception:  # an input another version wrote: not a codec question
        return


# How often `send_event` asks the monitor, and the first pause between tries (doubling each time).
# How long send_event keeps asking while updates are aborted or unanswered (a worker being restarted, a burst):
# long enough for a killed worker's replacement to start on a loaded machine. Backoff doubles from 0.1 s to 2 s.
UPDATE_RETRY_SECONDS = 60.0
UPDATE_BACKOFF_SECONDS = 0.1
UPDATE_BACKOFF_MAX_SECONDS = 2.0
_RETRYABLE_RPC = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.DEADLINE_EXCEEDED}
)


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError) or (
        isinstance(exc, RPCError) and exc.status in _RETRYABLE_RPC
    )


# GET /v1/heartbeats lists at most this many, querying this many workflows at a time.
HEARTBEATS_LIST_MAX = 500
HEARTBEAT_QUERIES_AT_ONCE = 20
HEARTBEAT_QUERY_TIMEOUT = timedelta(seconds=5)


def _quoted(value: str) -> str:
    """A string literal of Temporal's list filter."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The workflow's refusal types (ApplicationError.type) as AnswerRefused codes.
REFUSAL_CODES = {
    "UnknownAction": "unknown_action",
    "InvalidText": "invalid_text",
    "NotRecipient": "not_recipient",
    "TooLate": "too_late",
    "AlreadyAnswered": "already_answered",
    "AlreadyAcknowledged": "already_acknowledged",
    "TooManyAnswers": "already_answered",
    "Closed": "closed",
}


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

    With a `quota` (HeraldClient.connect gives one: HERALD_AGENT_RATE / HERALD_AGENT_BURST, in Redis when
    HERALD_REDIS_URL is set), each notification and each event that fires takes a token from its agent's bucket
    before anything reaches Temporal, or raises QuotaExceeded (`retry_after` seconds); a retry of a notification
    already started is never refused. The API's own client has none: the API applies each key's quota itself.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        policy: DeliveryPolicy | None = None,
        *,
        rules: RuleCache | None = None,
        database_url: str | None = None,
        store: Store | None = None,
        quota: AgentQuota | None = None,
        allow_private_urls: bool = False,
    ) -> None:
        self.temporal = client
        self._allow_private_urls = allow_private_urls  # HERALD_ALLOW_PRIVATE_WEBHOOKS: subscriptions' URLs
        self.quota = quota
        self.task_queue = task_queue
        self.policy = policy or DeliveryPolicy()
        self._rules = rules
        self._database_url = database_url
        self._store: Store | None = None  # opened here from database_url, closed by aclose
        self._given_store = store  # the caller's (the API's): used for snoozes, never closed here

    @classmethod
    async def connect(cls, settings: Settings | None = None, *, quota: bool = True) -> HeraldClient:
        """Connect with the environment's settings (TEMPORAL_ADDRESS, HERALD_TASK_QUEUE, ...): beside `herald dev`,
        HERALD_HOME and TEMPORAL_ADDRESS are enough, as the codec key is found in HERALD_HOME/codec.key.
        CodecMismatch when the workers' payloads are encrypted with a key this process doesn't have.
        `quota=False` leaves the agent quota to the caller (the API, which applies each key's own)."""
        settings = settings or Settings()
        return cls(
            await connect_temporal(settings),
            settings.temporal.task_queue,
            settings.delivery_policy(),
            database_url=settings.resolved_database_url,
            quota=AgentQuota.from_settings(settings) if quota else None,
            allow_private_urls=settings.webhook.allow_private_webhooks,
        )

    async def emit(
        self,
        agent_id: str,
        metrics: Mapping[str, MetricValue],
        *,
        event_id: str | None = None,
        rules: RuleCache | None = None,
        quota: QuotaSubject | None = None,
    ) -> EmitResult:
        """Report what an agent observed. Rules are evaluated here, in process: an event that matches
        nothing costs no Temporal or database work. A rule with a cooldown goes to `monitor/<agent_id>`, which
        applies it and starts the notifications; a rule without one starts its notifications from here (see
        `fire`). The result says what fired and what cooled down.

        Pass the same `event_id` again to retry safely: it names the same notifications and the same monitor update.
        An event that fires takes a token from the agent's quota (`quota`: whose bucket, default the agent's),
        or raises QuotaExceeded and fires nothing.
        """
        event = AgentEvent.model_validate(
            {"agent_id": agent_id, "metrics": dict(metrics), **({"event_id": event_id} if event_id else {})}
        )
        book = await (rules or await self._rule_cache()).book()
        firings, clearing = match_event(book, event), clearing_rules(book, event)
        if not firings and not clearing:
            return EmitResult(event_id=event.event_id)
        if self.quota is not None:
            await self.quota.take(quota or self.quota.for_agent(agent_id), await self._alert_store())
        return await self.fire(event, firings, clearing)

    async def fire(
        self, event: AgentEvent, firings: list[Firing], clearing: list[Clearing] | None = None
    ) -> EmitResult:
        """Fire an event's already-matched rules (`emit` without the matching), and resolve what the rules with
        `resolve: true` it made false (`clearing`, from `events.clearing_rules`) had fired.

        Rules with a cooldown, and rules with `resolve: true`, go to the agent's monitor, which owns cooldowns and
        remembers what resolving rules fired; other rules start their notifications here, one Temporal call each and
        no monitor round trip (`events.split_by_cooldown`). Both at once when an event matches both kinds; no
        monitor at all when it needs none. An event that only clears goes to a running monitor and never starts one
        (a monitor that isn't running remembers nothing to resolve).
        """
        plans = plan_firings(event.agent_id, event.event_id, firings, utcnow())
        monitored, direct = split_by_cooldown(plans)
        clearing = clearing or []

        async def through_monitor() -> EmitResult:
            if not monitored and not clearing:
                return EmitResult(event_id=event.event_id)
            request = EventRequest(
                agent_id=event.agent_id,
                event_id=event.event_id,
                plans=monitored,
                policy=self.policy,
                clearing=clearing,
            )
            return await self.send_event(request, start_monitor=bool(monitored))

        held, started = await asyncio.gather(through_monitor(), self._fire_directly(direct))
        return EmitResult(
            event_id=event.event_id,
            fired=in_plan_order(plans, [*started, *held.fired]),
            cooled_down=held.cooled_down,
            resolved=held.resolved,
        )

    async def _fire_directly(self, plans: list[FiringPlan]) -> list[FiredRule]:
        """Start the notifications of rules without a cooldown, as the monitor would (same ids and attributes).

        A notification that already exists (a retried event) counts as fired: it is the same notification.
        """
        await asyncio.gather(*(self._start_notification(n) for plan in plans for n in plan.notifications))
        return [FiredRule(rule=p.rule, notification_ids=[n.notification_id for n in p.notifications]) for p in plans]

    async def send_event(
        self, request: EventRequest, *, state: MonitorState | None = None, start_monitor: bool = True
    ) -> EmitResult:
        """Hand an event's matched rules to `monitor/<agent_id>`, starting it if it isn't running (with `start_monitor`;
        without, a monitor that isn't running answers that nothing happened: an event that only clears rules).

        The event id is the update id: Temporal drops a repeat, so a retry can't fire a rule twice.
        `state` seeds a monitor that isn't running yet (tests use it to rotate runs sooner).
        """
        deadline = time.monotonic() + UPDATE_RETRY_SECONDS
        backoff = UPDATE_BACKOFF_SECONDS
        while True:
            if not start_monitor:
                try:
                    return await self.temporal.get_workflow_handle(f"monitor/{request.agent_id}").execute_update(
                        MonitorWorkflow.event, request, id=request.event_id
                    )
                except RPCError as exc:
                    if exc.status is RPCStatusCode.NOT_FOUND:  # not running: it remembers nothing to resolve
                        return EmitResult(event_id=request.event_id)
                    if not _retryable(exc) or time.monotonic() + backoff > deadline:
                        raise
                except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
                    if not _retryable(exc) or time.monotonic() + backoff > deadline:
                        raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, UPDATE_BACKOFF_MAX_SECONDS)
                continue
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
                if not _retryable(exc) or time.monotonic() + backoff > deadline:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, UPDATE_BACKOFF_MAX_SECONDS)

    async def _rule_cache(self) -> RuleCache:
        """The rules from the store, opened on first use (agents that only `notify` never open it)."""
        if self._rules is None:
            if self._database_url is None:
                raise RuntimeError(
                    "emit needs the rules: use HeraldClient.connect(settings) or pass rules=RuleCache(...)"
                )
            if self._store is None:  # a snooze may have opened it already
                self._store = await Store.open(self._database_url)
            self._rules = RuleCache(self._store)
        return self._rules

    async def aclose(self) -> None:
        """Close the rule store `emit` opened, if any, and the quota's Redis connection."""
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self.quota is not None:
            await self.quota.aclose()

    async def _alert_store(self) -> Store | None:
        """Where the quota records its ops alert: the store given or opened, else none (the alert is logged)."""
        return self._given_store or self._store

    async def _spend(self, notification: AgentNotification, subject: QuotaSubject | None) -> None:
        """A token for the notification, or QuotaExceeded; over the quota, a retry of one already started (its
        notification_id chosen by the agent) goes through, as it starts nothing."""
        assert self.quota is not None
        try:
            await self.quota.take(subject or self.quota.for_agent(notification.agent_id), await self._alert_store())
        except QuotaExceeded:
            if "notification_id" in notification.model_fields_set and await self._started(notification):
                return
            raise

    async def _started(self, notification: AgentNotification) -> bool:
        """Whether this agent's notification with this id was already started (Temporal's server answers)."""
        try:
            parties = await self.parties(notification.notification_id, rpc_timeout=timedelta(seconds=2))
        except RPCError:
            return False
        return parties.agent_id == notification.agent_id

    async def notify(self, notification: AgentNotification, *, quota: QuotaSubject | None = None) -> NotificationHandle:
        """Start the notification (a question, when it has actions). The same notification_id again is the same
        notification. ValueError for a respond_by already past; NotificationIdTaken when the id is another agent's;
        QuotaExceeded (with `retry_after`) when the agent is over its quota: nothing was started. `quota` names the
        bucket to take from (an agent key's, as `herald mcp` does); default, the agent's.
        """
        try:
            answers.check_respond_by(notification, utcnow())
        except ValueError as exc:
            raise ValueError(f"respond_by: {exc}") from None
        if self.quota is not None:
            await self._spend(notification, quota)
        handle, started = await self._start_notification(notification)
        if not started:
            # The agent chose the id; it must not silently stand for another agent's notification.
            owner = (await handle.describe()).typed_search_attributes.get(search.AGENT_ID)
            if owner is not None and owner != notification.agent_id:
                raise NotificationIdTaken(notification.notification_id)
        return NotificationHandle(notification.notification_id, handle)

    async def _start_notification(
        self, notification: AgentNotification
    ) -> tuple[WorkflowHandle[NotificationWorkflow, NotificationOutcome], bool]:
        """Start `notification/<id>` once: the handle, and whether this call started it. A running or finished
        one with that id is not started again (the id stays taken for the namespace's retention)."""
        start = notification_start(notification)
        try:
            handle = await self.temporal.start_workflow(
                NotificationWorkflow.run,
                NotificationRequest(notification=notification, policy=self.policy),
                id=start.id,
                task_queue=self.task_queue,
                id_reuse_policy=start.id_reuse_policy,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=start.search_attributes,
                static_summary=start.static_summary,
            )
        except WorkflowAlreadyStartedError:
            return self.temporal.get_workflow_handle_for(NotificationWorkflow.run, start.id), False
        return handle, True

    def get_handle(self, notification_id: str) -> NotificationHandle:
        handle = self.temporal.get_workflow_handle_for(
            NotificationWorkflow.run, notification_workflow_id(notification_id)
        )
        return NotificationHandle(notification_id, handle)

    async def status(self, notification_id: str, rpc_timeout: timedelta | None = None) -> NotificationOutcome:
        """The notification's per-channel state right now (`get_handle(id).status()`)."""
        return await self.get_handle(notification_id).status(rpc_timeout=rpc_timeout)

    async def parties(self, notification_id: str, rpc_timeout: timedelta | None = None) -> NotificationParties:
        """The notification's user and agent from its workflow's search attributes, which Temporal's server
        answers while no worker runs."""
        workflow = self.temporal.get_workflow_handle(notification_workflow_id(notification_id))
        attributes = (await workflow.describe(rpc_timeout=rpc_timeout)).typed_search_attributes
        return NotificationParties(attributes.get(search.USER_ID), attributes.get(search.AGENT_ID))

    def without_fallback(self) -> HeraldClient:
        """A client on the same connection whose notifications never fall back to another channel (a test
        notification is about one channel)."""
        policy = self.policy.model_copy(update={"fallback_order": []})
        return HeraldClient(self.temporal, self.task_queue, policy, rules=self._rules, store=self._given_store)

    async def check_health(self) -> None:
        """Raise unless the Temporal frontend answers its health check."""
        await self.temporal.service_client.check_health()

    async def set_heartbeat(self, spec: HeartbeatSpec) -> None:
        """Create the heartbeat `heartbeat/<agent_id>/<name>`, or change its spec (signal-with-start, so it needs
        Temporal but no worker). A new heartbeat counts its start as its first check-in; a changed one keeps its last
        check-in, and a shorter period may make it missed at once."""
        config = HeartbeatConfig(spec=spec, policy=self.policy)
        await self.temporal.start_workflow(
            HeartbeatWorkflow.run,
            HeartbeatRun(config=config),
            id=spec.workflow_id,
            task_queue=self.task_queue,
            start_signal="configure",
            start_signal_args=[config],
            search_attributes=search.heartbeat_attributes(spec.agent_id, spec.notify.user_id),
            static_summary=f"heartbeat {spec.name} of {spec.agent_id}, every {spec.every_seconds} s",
        )

    async def ping(self, agent_id: str, name: str) -> HeartbeatPinged:
        """Check in for the agent's heartbeat `name`. The ping carries this process's time, and Temporal keeps it
        while no worker runs: a ping sent before the deadline counts as in time however late a worker handles it.
        HeartbeatNotFound when the agent has no such heartbeat."""
        pinged = HeartbeatPinged(name=name, agent_id=agent_id, pinged_at=utcnow())
        handle = self.temporal.get_workflow_handle_for(HeartbeatWorkflow.run, heartbeat_workflow_id(agent_id, name))
        try:
            await handle.signal(HeartbeatWorkflow.ping, HeartbeatPing(at=pinged.pinged_at))
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise HeartbeatNotFound(agent_id, name) from None
            raise
        return pinged

    async def delete_heartbeat(self, agent_id: str, name: str) -> None:
        """Stop watching the heartbeat (its workflow ends; nothing is sent). HeartbeatNotFound when there is none."""
        handle = self.temporal.get_workflow_handle_for(HeartbeatWorkflow.run, heartbeat_workflow_id(agent_id, name))
        try:
            await handle.signal(HeartbeatWorkflow.stop)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise HeartbeatNotFound(agent_id, name) from None
            raise

    async def heartbeats(self, agent_id: str | None = None) -> list[HeartbeatStatus]:
        """The running heartbeats on this client's task queue (one agent's, or all), by name, each as its workflow
        answers now (a query: a worker must be running). At most HEARTBEATS_LIST_MAX."""
        query = f"WorkflowType = 'HeartbeatWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = {_quoted(self.task_queue)}"
        if agent_id is not None:
            query += f" AND {search.AGENT_ID.name} = {_quoted(agent_id)}"
        ids = [wf.id async for wf in self.temporal.list_workflows(query, limit=HEARTBEATS_LIST_MAX)]
        gate = asyncio.Semaphore(HEARTBEAT_QUERIES_AT_ONCE)

        async def status(workflow_id: str) -> HeartbeatStatus | None:
            handle = self.temporal.get_workflow_handle_for(HeartbeatWorkflow.run, workflow_id)
            async with gate:
                try:
                    return await handle.query(HeartbeatWorkflow.status, rpc_timeout=HEARTBEAT_QUERY_TIMEOUT)
                except RPCError as exc:
                    if exc.status is RPCStatusCode.NOT_FOUND:  # stopped since it was listed
                        return None
                    raise

        found = [s for s in await asyncio.gather(*(status(i) for i in dict.fromkeys(ids))) if s is not None]
        return sorted(found, key=lambda s: (s.agent_id, s.name))

    async def ask(self, notification: AgentNotification, *, quota: QuotaSubject | None = None) -> NotificationOutcome:
        """Ask the person and wait, durably, for the answer: the outcome is `answered` (its `answer` says which
        action, from whom, through which channel) or `expired` once respond_by passes. Asking again with the same
        notification_id waits for the same question. Asking the same question again under another id within the
        dedup window (same agent, title or dedup_key, user and action ids) asks nobody: it waits for the first
        question's ending and returns its answer, with `duplicate_of` naming it.

        Asked of a `group`, each member answers their own notification and the `quorum` decides: the outcome holds
        every member's answer (`answers`: who, where, what, when), the `decision` and each member's outcome
        (`members`); `answer` is the answer that decided it.

        An agent that is itself a Temporal workflow starts `NotificationWorkflow` as a child instead and awaits it.
        """
        if not notification.actions:
            raise ValueError("actions: a question needs at least one action for the person to choose")
        handle = await self.notify(notification, quota=quota)
        return await handle.outcome()

    async def resolve(
        self,
        agent_id: str,
        dedup_key: str,
        *,
        by: str | None = None,
        rpc_timeout: timedelta = RESPOND_RPC_TIMEOUT,
    ) -> ResolveResult:
        """Resolve every open notification `agent_id` sent with `dedup_key` (to any user): each ends `resolved`, its
        pending retries, quiet-hours hold, escalation and answer wait stop, and what was delivered is told. `by` says
        who resolved (default `agent:<agent_id>`). Nothing open is a no-op, and the result's message says so.

        Open is also delivered and not yet resolved: a notification whose workflow has completed `delivered`,
        `partially_delivered`, `confirmed` or `unconfirmed` (herald.domain.resolve.ENDED_OPEN) gets one
        ResolveEndedWorkflow (`resolve/<notification_id>`, its id never reused, so a second resolve is a no-op) that
        records it `resolved` and tells what was delivered. The result lists both kinds.

        Both are found through Temporal's visibility (`HeraldResolveKey`), which trails a start or an ending by a
        moment: a notification started in the same instant may not be found yet, and completed ones only while
        Temporal keeps their closed runs (the namespace's retention). ValueError for a bad agent_id or dedup_key
        (naming the field); ResolveTimeout when no worker took it within `rpc_timeout` (retry).
        """
        try:
            ResolveBody(agent_id=agent_id, dedup_key=dedup_key)
        except ValidationError as exc:
            raise ValueError(str(describe(exc.errors())[0])) from None
        request = ResolveRequest(by=by or f"agent:{agent_id}")
        ids = [
            execution.id
            async for execution in self.temporal.list_workflows(
                resolve.open_query(agent_id, dedup_key), limit=resolve.RESOLVE_MAX
            )
        ]
        results = await asyncio.gather(
            *(resolve_workflow(self.temporal, workflow_id, request, rpc_timeout) for workflow_id in ids),
            return_exceptions=True,
        )
        resolved = [
            workflow_id.removeprefix("notification/")
            for workflow_id, result in zip(ids, results, strict=True)
            if result is True
        ]
        for result in results:
            if isinstance(result, WorkflowUpdateRPCTimeoutOrCancelledError):
                raise ResolveTimeout(agent_id, resolved) from None
            if isinstance(result, BaseException):
                raise result
        # Listed after the running ones resolved: one that completed delivered meanwhile is found here instead.
        ended = [
            notification_id
            async for execution in self.temporal.list_workflows(
                resolve.ended_query(agent_id, dedup_key), limit=resolve.RESOLVE_MAX
            )
            if (notification_id := execution.id.removeprefix("notification/")) not in resolved
        ]
        started = await asyncio.gather(
            *(resolve_ended(self.temporal, n, request.by, self.policy, self.task_queue) for n in dict.fromkeys(ended))
        )
        resolved += [n for n, ok in zip(dict.fromkeys(ended), started, strict=True) if ok]
        return ResolveResult(
            agent_id=agent_id, resolved=resolved, message=resolve.resolved_message(agent_id, len(resolved))
        )

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
        """Answer a notification for `user_id` (the caller has authenticated them): one of its actions, or the
        built-in `ack` / `snooze`; `text`, the person's words, for an action with `input: text` (and only then).
        Returns the answer as recorded; raises AnswerRefused with the reason otherwise (`invalid_text` for text
        missing or out of place), ValueError for text that is empty or over 2000 characters, and AnswerTimeout when
        no worker took the answer within `rpc_timeout` (retry).

        `update_id` names the answer: calls with the same id are one answer (Temporal returns the first's result),
        so a retry after a timeout or a lost reply can't answer twice; a refused answer leaves its id free.
        `snooze` mutes the notification's rule (or agent) for that user for an hour, even once the notification has
        finished; it needs the store (`store=`, the one given to the client, or HeraldClient.connect's database).
        """
        try:
            request = AnswerRequest(action_id=action_id, user_id=user_id, channel=AnswerChannel(channel), text=text)
        except ValidationError as exc:
            raise ValueError(str(describe(exc.errors())[0])) from None
        try:
            return await self._respond(notification_id, request, store, update_id, rpc_timeout)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise AnswerTimeout(notification_id) from None
        except RPCError as exc:
            if exc.status is RPCStatusCode.DEADLINE_EXCEEDED:  # a query on the way (snooze, a finished one)
                raise AnswerTimeout(notification_id) from None
            raise
        except AnswerRefused as refusal:
            if not refusal.recorded and refusal.code != "not_found" and (store or self._given_store) is not None:
                refused = RefusedAnswer(
                    action_id=request.action_id, channel=request.channel, at=utcnow(), reason=refusal.reason
                )
                await (await self._answer_store(store)).answers.record_refusal(notification_id, refused)
            raise

    async def _respond(
        self,
        notification_id: str,
        request: AnswerRequest,
        store: Store | None,
        update_id: str | None,
        rpc_timeout: timedelta,
    ) -> Answer:
        handle = self.temporal.get_workflow_handle(notification_workflow_id(notification_id))
        if request.action_id == SNOOZE_ACTION:
            return await self._snooze(notification_id, request, store, update_id, rpc_timeout)
        try:
            result: Answer = await handle.execute_update(
                "respond", request, id=update_id, result_type=Answer, rpc_timeout=rpc_timeout
            )
        except WorkflowUpdateFailedError as exc:
            raise _refusal(exc) from None
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            raise await self._closed_refusal(notification_id, rpc_timeout) from None
        return result

    async def _snooze(
        self,
        notification_id: str,
        request: AnswerRequest,
        store: Store | None,
        update_id: str | None,
        rpc_timeout: timedelta,
    ) -> Answer:
        """Store the snooze (it outlives the notification), then ack the notification if it still runs."""
        answer_store = await self._answer_store(store)
        # Temporal first (it knows running notifications); the store keeps finished ones past Temporal's retention.
        outcome = await self._outcome_of(notification_id, rpc_timeout) or await answer_store.notifications.get_outcome(
            notification_id
        )
        if outcome is None:
            raise AnswerRefused("not_found", f"no notification {notification_id}")
        if outcome.user_id != request.user_id:
            raise AnswerRefused("not_recipient", "only the notified user may answer this notification")
        now = utcnow()
        snooze = Snooze(
            user_id=request.user_id,
            scope=answers.snooze_scope(outcome.rule, outcome.agent_id),
            until=now + timedelta(seconds=SNOOZE_SECONDS),
        )
        await answer_store.answers.put_snooze(snooze)
        answer = Answer(action_id=SNOOZE_ACTION, user_id=request.user_id, channel=request.channel, answered_at=now)
        if outcome.status is NotificationStatus.pending:
            handle = self.temporal.get_workflow_handle(notification_workflow_id(notification_id))
            try:
                acked: Answer = await handle.execute_update(
                    "respond", request, id=update_id, result_type=Answer, rpc_timeout=rpc_timeout
                )
                return acked
            except WorkflowUpdateFailedError as exc:
                refusal = _refusal(exc)
                if refusal.code != "already_acknowledged":
                    raise refusal from None
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
        return answer  # snoozed: the notification had finished (or was already acked), the mute still holds

    async def _outcome_of(
        self, notification_id: str, rpc_timeout: timedelta | None = None
    ) -> NotificationOutcome | None:
        try:
            return await self.get_handle(notification_id).status(rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            return None

    async def _closed_refusal(self, notification_id: str, rpc_timeout: timedelta) -> AnswerRefused:
        """Why a finished (or unknown) notification takes no answer, from its final outcome."""
        outcome = await self._outcome_of(notification_id, rpc_timeout)
        if outcome is None:
            return AnswerRefused("not_found", f"no notification {notification_id}")
        if outcome.status is NotificationStatus.answered and outcome.answer is not None:
            first = outcome.answer
            return AnswerRefused(
                "already_answered",
                f"already answered: {first.action_id} via {first.channel.value} at {first.answered_at.isoformat()}",
            )
        if outcome.status is NotificationStatus.expired:
            deadline = outcome.respond_by.isoformat() if outcome.respond_by else "its deadline"
            return AnswerRefused("too_late", f"too late: answers were taken until {deadline}")
        return AnswerRefused("closed", f"this notification has finished ({outcome.status.value}); it takes no answer")

    # --- silences ------------------------------------------------------------------------------------------------

    async def add_silence(
        self, silence: SilenceInput | Mapping[str, Any], *, created_by: str = "client", store: Store | None = None
    ) -> Silence:
        """Silence the notifications `silence.matchers` names from its `starts_at` (default now) until `ends_at`:
        they end `silenced`, logged and not delivered (critical ones only with `max_priority: critical`). A
        ValidationError names a bad field; a ValueError (`SilenceProblem`, with `.field`) an `ends_at` that is not
        after `starts_at` or not in the future. Like `snooze`, it needs the store (HeraldClient.connect's, or
        `store=`)."""
        body = silence if isinstance(silence, SilenceInput) else SilenceInput.model_validate(silence)
        made = new_silence(body, created_by, utcnow())
        await (await self._answer_store(store)).silences.put_silence(made)
        return made

    async def list_silences(
        self,
        *,
        agent_id: str | None = None,
        user_id: str | None = None,
        include_expired: bool = False,
        store: Store | None = None,
    ) -> list[Silence]:
        """Silences newest first, those naming `agent_id` / `user_id` when given; ended ones only if asked."""
        return await (await self._answer_store(store)).silences.list_silences(
            utcnow(), agent_id=agent_id, user_id=user_id, include_expired=include_expired
        )

    async def expire_silence(self, silence_id: str, *, store: Store | None = None) -> Silence | None:
        """End a silence now (one already ended stays as it was); None when there is no such silence."""
        return await (await self._answer_store(store)).silences.expire_silence(silence_id, utcnow())

    # --- subscriptions -------------------------------------------------------------------------------------------

    async def set_subscription(
        self,
        name: str,
        subscription: SubscriptionInput | Mapping[str, Any],
        *,
        owner: str = "client",
        store: Store | None = None,
    ) -> Subscription:
        """Save the subscription `name`: signed POSTs of the events named (`notification.delivered`, ...,
        `heartbeat.missed`) to its URL, in order, each retried as a webhook is. Saving enables it again, its
        failures cleared. A ValidationError names a bad field; UnsafeURL (a ValueError) a URL that resolves inward
        (unless HERALD_ALLOW_PRIVATE_WEBHOOKS). Needs the store, as silences do."""
        body = (
            subscription
            if isinstance(subscription, SubscriptionInput)
            else SubscriptionInput.model_validate(subscription)
        )
        return await save_subscription(
            await self._answer_store(store), name, body, owner, allow_private=self._allow_private_urls
        )

    async def subscriptions(self, *, agent_id: str | None = None, store: Store | None = None) -> list[Subscription]:
        """Subscriptions by name (those naming `agent_id` when given), each with `enabled`, `failures` in a row and
        `last_error`: a subscriber that kept failing is disabled."""
        return await (await self._answer_store(store)).subscriptions.list_subscriptions(agent_id=agent_id)

    async def delete_subscription(self, name: str, *, store: Store | None = None) -> bool:
        """Delete the subscription: nothing more is posted to it. False when there was none."""
        return await (await self._answer_store(store)).subscriptions.delete_subscription(name)

    async def _answer_store(self, store: Store | None) -> Store:
        if store is not None:
            return store
        if self._given_store is not None:
            return self._given_store
        if self._database_url is None:
            raise RuntimeError(
                "snoozes, silences and subscriptions need the store: use HeraldClient.connect(settings) or pass store="
            )
        if self._store is None:
            self._store = await Store.open(self._database_url)
        return self._store


def _refusal(exc: WorkflowUpdateFailedError) -> AnswerRefused:
    """The workflow's refusal (validator or handler) as an AnswerRefused with its code and reason."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        # The handler's refusals (a later answer while the workflow ran) are in the outcome; the validator's aren't.
        recorded = cause.type in ("AlreadyAnswered", "AlreadyAcknowledged")
        return AnswerRefused(REFUSAL_CODES.get(cause.type or "", "refused"), cause.message, recorded=recorded)
    return AnswerRefused("refused", str(cause or exc))
