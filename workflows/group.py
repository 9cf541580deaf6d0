"""GroupWorkflow `group/<user_id>/<agent_id>/<group_key>`: notifications of one agent for one user with one group_key,
delivered together in one message per batch.

Members arrive by signal-with-start (`add`) from NotificationWorkflow (activities/group.py), which ends them
`grouped`. The first member of a batch waits its `group_wait_seconds` on a durable timer for the others; then one
message ("<n> notifications: <first title>", listing each member) goes through the usual pipeline as a notification
of its own (the user's preferences for the agent route it, with its retries and fallback; `is_group`, so it is not
silenced, digested or throttled again), and each member's outcome records that message and its channels. Members
arriving within `group_interval_seconds` of the last message go together at the interval's end; once an interval
passes with nobody waiting, the run ends (a later member starts a new one). The decisions are
herald.domain.grouping's. The run continues as new when Temporal suggests it, carrying what waits.

A batch's message is awaited before the next batch is timed: a message held by quiet hours holds the group too.
Like the other workflows it runs outside the sandbox: keep it free of I/O, clocks and randomness.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.group import GroupActivities
    from herald.domain import grouping
    from herald.models import GroupDelivery, GroupMember, GroupRecord, GroupStart, NotificationRequest
    from workflows.notification import STORE_RETRY, STORE_TIMEOUT
    from workflows.options import start_notification_child

# How many sent members a run remembers (and carries across continue-as-new), so a retried hand-over of one adds
# nothing: a retry comes seconds after its first try, well within the last thousand members.
SENT_REMEMBERED = 1000


@workflow.defn(name="GroupWorkflow", sandboxed=False)
class GroupWorkflow:
    @workflow.init
    def __init__(self, start: GroupStart) -> None:
        self._start = start
        self._members: dict[str, GroupMember] = {m.item.notification_id: m for m in start.members}
        self._last_sent_at = start.last_sent_at
        self._last_interval = start.last_interval_seconds
        self._sent = 0  # messages sent by this run
        self._sent_ids: dict[str, None] = dict.fromkeys(start.sent_ids)  # members sent already, oldest first

    @workflow.signal
    def add(self, member: GroupMember) -> None:
        """Take a member for the next message; the same notification twice is held once."""
        if member.item.notification_id not in self._members and member.item.notification_id not in self._sent_ids:
            arrived = member.arrived_at or workflow.now()
            self._members[member.item.notification_id] = member.model_copy(update={"arrived_at": arrived})

    @workflow.query
    def pending(self) -> list[GroupMember]:
        """The members waiting for the next message, in arrival order."""
        return sorted(self._members.values(), key=lambda m: (m.arrived_at or m.item.created_at, m.item.created_at))

    @workflow.run
    async def run(self, start: GroupStart) -> None:
        while True:
            if not await self._members_waiting():
                break
            first = self.pending()[0]
            due = grouping.send_at(
                first.arrived_at or workflow.now(), first.group_wait_seconds, self._last_sent_at, self._last_interval
            )
            wait = (due - workflow.now()).total_seconds()
            if wait > 0:
                workflow.set_current_details(f"{len(self._members)} waiting; the message at {due.isoformat()}")
                await workflow.sleep(wait, summary="the group's wait")
            await self._send(self.pending())
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    GroupStart(
                        user_id=start.user_id,
                        agent_id=start.agent_id,
                        group_key=start.group_key,
                        policy=start.policy,
                        members=self.pending(),
                        last_sent_at=self._last_sent_at,
                        last_interval_seconds=self._last_interval,
                        sent_ids=list(self._sent_ids),
                    )
                )
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _members_waiting(self) -> bool:
        """Whether a member waits: on a new run, the one that started it; after a message, one arriving within its
        interval (the run then ends when none did)."""
        if self._members:
            return True
        if self._last_sent_at is None or self._last_interval is None:
            await workflow.wait_condition(lambda: bool(self._members))
            return True
        idle = grouping.idle_until(self._last_sent_at, self._last_interval)
        wait = (idle - workflow.now()).total_seconds()
        if wait > 0:
            workflow.set_current_details(f"sent {self._sent}; open for late members until {idle.isoformat()}")
            try:
                await workflow.wait_condition(
                    lambda: bool(self._members), timeout=wait, timeout_summary="the group's interval"
                )
            except TimeoutError:
                pass
        return bool(self._members)

    async def _send(self, batch: list[GroupMember]) -> None:
        """One message for `batch`, through the usual pipeline; then each member's outcome records it."""
        for member in batch:
            del self._members[member.item.notification_id]
            self._sent_ids[member.item.notification_id] = None
        for old in list(self._sent_ids)[: max(0, len(self._sent_ids) - SENT_REMEMBERED)]:
            del self._sent_ids[old]
        start = self._start
        message_id = f"group-{workflow.uuid4().hex}"
        now = workflow.now()
        notification = grouping.group_notification(
            start.user_id, start.agent_id, start.group_key, message_id, batch, now
        )
        self._last_sent_at, self._last_interval = now, batch[0].group_interval_seconds
        self._sent += 1
        workflow.set_current_details(f"sending {len(batch)} as {message_id}")
        handle = await start_notification_child(
            NotificationRequest(notification=notification, policy=start.policy, is_group=True)
        )
        outcome = await handle
        await workflow.execute_activity_method(
            GroupActivities.record_grouped,
            GroupRecord(
                group_id=workflow.info().workflow_id,
                notification_ids=[m.item.notification_id for m in batch],
                delivery=GroupDelivery(notification_id=message_id, status=outcome.status, size=len(batch)),
                channels=outcome.channels,
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"record the group's message of {len(batch)}: {outcome.status.value}",
        )
