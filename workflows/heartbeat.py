"""HeartbeatWorkflow `heartbeat/<agent_id>/<name>`: waits for an agent's check-ins on a durable timer. Orchestration
only; every decision is in herald/domain/heartbeats.py.

PUT starts it with signal-with-start (`configure`, the spec), so creating and changing a heartbeat are one call
that needs Temporal but no worker; pings are signals too (`ping`, stamped with the time they were sent), kept by
Temporal while no worker runs. The timer is the deadline, `last ping + every + grace`: when it fires with no ping
in time, the heartbeat is `missed` and starts one NotificationWorkflow ("<name> missed its check-in") for its
person, as an abandoned child the way the monitor starts a rule's; the next ping makes it `up` and starts "<name>
checked in again", resolving the miss's alert first (one still held or retrying sends nothing more). A stop signal
(DELETE) ends it. It continues as new after `pings_per_run` pings, or when
Temporal suggests it. Outside the sandbox like Herald's other workflows (CONTRIBUTING): keep it free of I/O, clocks
and randomness; the replay of tests/histories guards it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from herald.domain import heartbeats
    from herald.domain.heartbeats import Notice
    from herald.models import (
        HeartbeatConfig,
        HeartbeatEvent,
        HeartbeatPing,
        HeartbeatRun,
        HeartbeatState,
        HeartbeatStatus,
        MissedCheckInResolve,
        NotificationRequest,
        notification_workflow_id,
    )
    from workflows.options import start_notification_child

COUNT_TIMEOUT = timedelta(seconds=10)
# New runs resolve the miss's alert at the check-in that ends it (before "checked in again" starts): one held by
# quiet hours or still retrying stops there. Runs recorded before it replay without the step.
RESOLVE_MISSED_PATCH = "heartbeat-resolve-missed-v1"
RESOLVE_TIMEOUT = timedelta(seconds=30)
RESOLVE_ATTEMPTS = 5


@workflow.defn(name="HeartbeatWorkflow", sandboxed=False)
class HeartbeatWorkflow:
    @workflow.init
    def __init__(self, run: HeartbeatRun) -> None:
        self._run = heartbeats.started(run, workflow.now())
        # Signals in the order they arrived: a HeartbeatConfig (PUT) or a HeartbeatPing.
        self._inbox: list[HeartbeatConfig | HeartbeatPing] = []
        self._pings_this_run = 0
        self._stopping = False

    @workflow.run
    async def run(self, run: HeartbeatRun) -> HeartbeatStatus:
        while True:
            await self._wait_for_a_signal_or_the_deadline()
            for notice in self._handle_inbox():
                await self._tell(notice)
            if self._stopping:
                return heartbeats.status(self._run)
            if not self._inbox and self._should_rotate():
                workflow.continue_as_new(self._run)

    async def _wait_for_a_signal_or_the_deadline(self) -> None:
        """Until a signal comes, or (while up) the deadline; a missed heartbeat waits for its next ping alone."""
        if self._run.state is HeartbeatState.missed:
            await workflow.wait_condition(self._signalled)
            return
        due = heartbeats.deadline(self._run)
        timeout = (due - workflow.now()).total_seconds()
        if timeout <= 0:
            return
        try:
            await workflow.wait_condition(
                self._signalled, timeout=timedelta(seconds=timeout), timeout_summary="until the check-in is due"
            )
        except TimeoutError:
            pass  # the deadline: `_handle_inbox` decides (a ping handled in the same task may have come in time)

    def _signalled(self) -> bool:
        return bool(self._inbox) or self._stopping

    def _handle_inbox(self) -> list[Notice]:
        """Every signal in arrival order, then the deadline as of now: what the person is to be told."""
        now = workflow.now()
        notices: list[Notice] = []
        while self._inbox:
            message = self._inbox.pop(0)
            if isinstance(message, HeartbeatConfig):
                self._run.config = HeartbeatConfig(spec=self._run.config.spec, policy=message.policy)
                notices += heartbeats.configure(self._run, message.spec, now)
            else:
                self._pings_this_run += 1
                notices += heartbeats.ping(self._run, message.at, now)
        if not self._stopping:
            notices += heartbeats.check_deadline(self._run, now)
        return notices

    async def _tell(self, notice: Notice) -> None:
        """Start the notification for a miss or its end, and count it."""
        notification = heartbeats.notification(self._run.config.spec, notice, workflow.uuid4().hex, workflow.now())
        if notice.event is HeartbeatEvent.resumed:
            missed = self._run.missed_notification_id
            if missed is not None and workflow.patched(RESOLVE_MISSED_PATCH):
                await self._resolve_missed(missed)
            self._run.missed_notification_id = None
        else:
            self._run.missed_notification_id = notification.notification_id
        await start_notification_child(NotificationRequest(notification=notification, policy=self._run.config.policy))
        await workflow.execute_local_activity(
            "count_heartbeat_event", notice.event, start_to_close_timeout=COUNT_TIMEOUT, summary=notice.event.value
        )

    async def _resolve_missed(self, notification_id: str) -> None:
        """The miss's alert resolved: nothing more of it goes out (a quiet-hours hold, a retry) now the agent is back."""
        spec = self._run.config.spec
        await workflow.execute_activity(
            "resolve_missed_check_in",
            MissedCheckInResolve(
                workflow_id=notification_workflow_id(notification_id), by=f"heartbeat:{spec.agent_id}/{spec.name}"
            ),
            start_to_close_timeout=RESOLVE_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=RESOLVE_ATTEMPTS),
            result_type=bool,
            summary="resolve the missed check-in",
        )

    def _should_rotate(self) -> bool:
        return self._pings_this_run >= self._run.pings_per_run or workflow.info().is_continue_as_new_suggested()

    @workflow.signal
    def configure(self, config: HeartbeatConfig) -> None:
        """A new spec (PUT): applied in arrival order with the pings. Another heartbeat's spec is dropped."""
        if config.spec.workflow_id != self._run.config.spec.workflow_id:
            workflow.logger.warning("dropped a spec for %s", config.spec.workflow_id)
            return
        self._inbox.append(config)

    @workflow.signal
    def ping(self, ping: HeartbeatPing) -> None:
        self._inbox.append(ping)

    @workflow.signal
    def stop(self) -> None:
        """Stop watching (DELETE): the workflow ends with its last status; nothing is sent."""
        self._stopping = True

    @workflow.query
    def status(self) -> HeartbeatStatus:
        return heartbeats.status(self._run)
