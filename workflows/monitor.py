"""MonitorWorkflow `monitor/<agent_id>`: owns the agent's rule cooldowns and fires matched rules. Orchestration only.

Only rules with a cooldown come here: `HeraldClient.fire` starts the notifications of a rule without one
itself (`herald.events.split_by_cooldown`), since such a rule needs no shared state and the monitor would
only add latency.

Events arrive as updates (update-with-start, the update id is the event id), so the caller learns at once
which rules fired and which a cooldown held. Updates run one at a time against the workflow's state: a
burst of events for one rule fires it once, whichever API process or worker each event came through, and
the server drops a repeated update id, so a retried event never fires twice. A retry that reaches a later run
(after a continue-as-new) finds its notifications already started, finished ones too (REJECT_DUPLICATE): the same
firing, reported again and started nothing, and the cooldown stays as it was. Each firing starts one
NotificationWorkflow per user as an abandoned child, so notifications outlive the monitor. The monitor
continues as new before its history grows large, and completes once nothing is cooling down and it has
been quiet a while; the next event starts it again.

Like NotificationWorkflow it runs outside the workflow sandbox: it runs for every event with a cooldown, and the
sandbox re-imports its module for each run it starts (and, at every worker's start, to check it); the replay of
tests/histories guards its determinism instead. Keep it free of I/O, clocks and randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.resolve import ResolveActivities
    from herald.domain import events, search
    from herald.models import (
        Clearing,
        CooledDownRule,
        DeliveryPolicy,
        EmitResult,
        EventRequest,
        FiredRule,
        FiringPlan,
        MonitorState,
        NotificationRequest,
        ResolvedRule,
        ResolveNotifications,
        notification_workflow_id,
    )
    from workflows.notification import SEARCHABLE_PATCH
    from workflows.options import start_notification_child


@dataclass(frozen=True)
class FiringRule:
    """A rule that fires for this event: its plan, the cooldown scope it recorded, and that scope's cooldown before."""

    plan: FiringPlan
    scope: str
    before: datetime | None


@dataclass
class Decision:
    """What an event's rules come to before anything is started: held by a cooldown, or firing."""

    cooled_down: list[CooledDownRule] = field(default_factory=list)
    firing: list[FiringRule] = field(default_factory=list)


# New runs start each notification with REJECT_DUPLICATE, so an event retried after a continue-as-new (its update
# id is new to the run) cannot start a notification that already ran; a firing whose notifications all exist
# already is that same firing again and leaves the cooldown as it was. Their rules cool down per rendered
# dedup_key (`events.cooldown_scope`). Older histories replay the default reuse policy and per-rule cooldowns.
FIRINGS_PATCH = "monitor-firings-v1"
# New runs remember what a rule with `resolve: true` fires (per cooldown scope, MonitorState.resolvable) and, when an
# event clears the rule (EventRequest.clearing), resolve those notifications with one activity (a workflow can't
# send another an update). Asked only by an event that names such a rule, which no earlier history did.
RESOLVE_PATCH = "monitor-resolve-v1"
RESOLVE_TIMEOUT = timedelta(seconds=30)
RESOLVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5
)


@workflow.defn(name="MonitorWorkflow", sandboxed=False)
class MonitorWorkflow:
    @workflow.init
    def __init__(self, state: MonitorState) -> None:
        self._state = state
        if self._state.last_event_at is None:  # started for the event it is about to receive
            self._state.last_event_at = workflow.now()
        self._events_this_run = 0

    @workflow.run
    async def run(self, state: MonitorState) -> None:
        if workflow.patched(SEARCHABLE_PATCH):  # findable by agent, whoever started it
            workflow.upsert_search_attributes(
                search.missing_updates(
                    workflow.info().typed_search_attributes, search.monitor_attributes(state.agent_id)
                )
            )
        while True:
            rotate = await self._wait_for_rotation_or_quiet()
            await workflow.wait_condition(workflow.all_handlers_finished)
            if rotate:
                workflow.continue_as_new(events.pruned(self._state, workflow.now()))
            quiet = events.quiet_at(self._state)
            if quiet is None or workflow.now() >= quiet:
                return

    async def _wait_for_rotation_or_quiet(self) -> bool:
        """True when the history is big enough to continue as new; False when the quiet time has come."""
        while True:
            quiet = events.quiet_at(self._state)
            timeout = (quiet - workflow.now()).total_seconds() if quiet is not None else 0.0
            if timeout <= 0:  # quiet (or nothing to remember at all)
                return self._should_rotate()
            try:
                await workflow.wait_condition(
                    self._should_rotate, timeout=timedelta(seconds=timeout), timeout_summary="until quiet"
                )
                return True
            except TimeoutError:
                continue  # an event may have moved the quiet time; look again

    def _should_rotate(self) -> bool:
        return self._events_this_run >= self._state.events_per_run or workflow.info().is_continue_as_new_suggested()

    @workflow.update
    async def event(self, request: EventRequest) -> EmitResult:
        """Apply each matched rule's cooldown; start the notifications of the rules that fire."""
        now = workflow.now()
        once = workflow.patched(FIRINGS_PATCH)
        resolves = (request.clearing or any(p.resolve for p in request.plans)) and workflow.patched(RESOLVE_PATCH)
        self._events_this_run += 1
        self._state.last_event_at = now
        # Decide every rule before the first await, so a concurrent event sees these cooldowns (and what they fired).
        decision = self._decide(request.plans, now, once, bool(resolves))
        cleared = self._clear(request.clearing, now) if resolves else []
        fired = [await self._fire(firing, request.policy, now, once) for firing in decision.firing]
        resolved = [await self._resolve(rule, ids, request.policy) for rule, ids in cleared]
        return EmitResult(event_id=request.event_id, fired=fired, cooled_down=decision.cooled_down, resolved=resolved)

    def _decide(self, plans: list[FiringPlan], now: datetime, once: bool, resolves: bool = False) -> Decision:
        """Which rules a cooldown holds, and which fire (their cooldowns recorded now, before any await; with
        `resolves`, what a rule with `resolve: true` fires remembered under its scope too)."""
        decision = Decision()
        for plan in plans:
            scope = events.cooldown_scope(plan) if once else plan.rule
            until = events.cooling(self._state, scope, now)
            if until is not None:
                decision.cooled_down.append(CooledDownRule(rule=plan.rule, until=until))
                continue
            before = self._state.cooling_until.get(scope)
            events.record_firing(self._state, scope, plan.cooldown_seconds, now)
            if resolves and plan.resolve:
                events.remember_firing(self._state, scope, [n.notification_id for n in plan.notifications], now)
            decision.firing.append(FiringRule(plan, scope, before))
        return decision

    def _clear(self, clearing: list[Clearing], now: datetime) -> list[tuple[str, list[str]]]:
        """(rule, notification ids) each clearing rule resolves: what it fired for the event's scope, forgotten now
        (before any await), so a second clearing event resolves nothing again. A scope with nothing remembered is
        left out: the rule had not fired, or its firing was cleared already."""
        cleared = []
        for clear in clearing:
            ids = events.take_resolvable(self._state, events.clearing_scope(clear), now)
            if ids:
                cleared.append((clear.rule, ids))
        return cleared

    async def _resolve(self, rule: str, notification_ids: list[str], policy: DeliveryPolicy) -> ResolvedRule:
        """Resolve what the rule fired (open notifications end `resolved`, by `rule:<name>`; ones that had ended
        delivered are resolved by a ResolveEndedWorkflow each, on `policy`); the ones resolved. One that fails for
        good after its retries resolves nothing (the notifications run on as they were)."""
        request = ResolveNotifications(
            workflow_ids=[notification_workflow_id(n) for n in notification_ids], by=f"rule:{rule}", policy=policy
        )
        try:
            result = await workflow.execute_activity_method(
                ResolveActivities.resolve_notifications,
                request,
                start_to_close_timeout=RESOLVE_TIMEOUT,
                retry_policy=RESOLVE_RETRY,
                summary=f"resolve what {rule} fired",
            )
        except ActivityError:
            return ResolvedRule(rule=rule)
        resolved = {w.removeprefix("notification/") for w in result.resolved}
        return ResolvedRule(rule=rule, notification_ids=[n for n in notification_ids if n in resolved])

    async def _fire(self, firing: FiringRule, policy: DeliveryPolicy, now: datetime, once: bool) -> FiredRule:
        """Start one firing rule's notifications; a firing whose notifications all exist already (the event came
        again after a continue-as-new) is that same firing, and its cooldown goes back to what it was."""
        plan = firing.plan
        started = [
            await self._start(NotificationRequest(notification=notification, policy=policy), once)
            for notification in plan.notifications
        ]
        if once and plan.notifications and not any(started):
            events.undo_firing(self._state, firing.scope, plan.cooldown_seconds, now, firing.before)
        return FiredRule(rule=plan.rule, notification_ids=[n.notification_id for n in plan.notifications])

    @event.validator
    def _validate_event(self, request: EventRequest) -> None:
        if request.agent_id != self._state.agent_id:
            raise ValueError(f"event for agent {request.agent_id} sent to the monitor of {self._state.agent_id}")

    @workflow.query
    def state(self) -> MonitorState:
        return self._state

    async def _start(self, request: NotificationRequest, once: bool) -> bool:
        """Start the notification; False when it already exists (running, or finished: `once` runs never reuse
        a notification's id, older runs only refused a running one)."""
        reuse = WorkflowIDReusePolicy.REJECT_DUPLICATE if once else WorkflowIDReusePolicy.ALLOW_DUPLICATE
        try:
            await start_notification_child(request, id_reuse_policy=reuse)
        except WorkflowAlreadyStartedError:
            return False  # this event's notification already exists (the event came again in a later run)
        return True
