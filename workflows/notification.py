"""NotificationWorkflow: one notification, from dedup check to a recorded outcome. Orchestration only.

dedup -> merge preferences -> plan (pure) -> deliver on each channel concurrently, each with retries and
fallback -> critical: escalate until two channels confirm, else `unconfirmed` and an ops alert -> record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from activities.dedup import DedupActivities
    from activities.delivery import DeliveryActivities
    from activities.digest import DigestActivities
    from activities.preferences import PreferenceActivities
    from herald import routing, search
    from herald.dedup import content_key
    from herald.digest import digest_item
    from herald.models import (
        ChannelName,
        ChannelResult,
        ChannelStatus,
        DedupCheck,
        DeliveryRequest,
        DigestEnqueue,
        NotificationOutcome,
        NotificationRequest,
        NotificationStatus,
        OpsAlert,
        PreferenceQuery,
        Priority,
    )

# New runs upsert their search attributes (status, channels) and so add commands that older histories
# lack: the patch keeps those replaying. Deprecate it once no run started before it can be replayed.
SEARCHABLE_PATCH = "searchable-v1"

# Store activities wait out a store outage rather than lose the notification.
STORE_TIMEOUT = timedelta(seconds=15)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)


@workflow.defn(name="NotificationWorkflow")
class NotificationWorkflow:
    @workflow.init
    def __init__(self, request: NotificationRequest) -> None:
        n = request.notification
        self._request = request
        self._outcome = NotificationOutcome(
            notification_id=n.notification_id,
            workflow_id=workflow.info().workflow_id,
            agent_id=n.agent_id,
            user_id=n.user_id,
            priority=n.priority,
        )
        self._enabled: dict[ChannelName, bool] = {}
        self._used: set[ChannelName] = set()
        self._slot_of: dict[ChannelName, int] = {}  # which planned channel's chain a channel serves
        self._searchable = False
        retry = request.policy.retry
        self._delivery_retry = RetryPolicy(
            initial_interval=timedelta(seconds=retry.initial_interval_seconds),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
            maximum_attempts=retry.maximum_retries + 1,
        )

    @workflow.query(name="status")
    def status(self) -> NotificationOutcome:
        """The live per-channel state; the final outcome once the workflow has finished."""
        return self._outcome

    @workflow.run
    async def run(self, request: NotificationRequest) -> NotificationOutcome:
        n, policy, outcome = request.notification, request.policy, self._outcome
        self._searchable = workflow.patched(SEARCHABLE_PATCH)
        if self._searchable:
            workflow.upsert_search_attributes(
                search.missing_updates(workflow.info().typed_search_attributes, search.notification_attributes(n))
            )
        self._show()

        dedup = await workflow.execute_activity_method(
            DedupActivities.check_duplicate,
            DedupCheck(
                key=content_key(n), notification_id=n.notification_id, window_seconds=policy.dedup_window_seconds
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="check duplicate",
        )
        if dedup.duplicate:
            outcome.status = NotificationStatus.suppressed_duplicate
            outcome.duplicate_of = dedup.owner_notification_id
            return await self._finish()

        # A digest email is sent as it is: its own priority must not digest or filter it again.
        preferences = await workflow.execute_activity_method(
            PreferenceActivities.merge_preferences,
            PreferenceQuery(
                user_id=n.user_id,
                agent_id=n.agent_id,
                priority=None if request.is_digest else n.priority,
                channels=None if request.is_digest else n.channels,
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="merge preferences",
        )
        self._enabled = preferences.enabled
        if preferences.digest:
            await workflow.execute_activity_method(
                DigestActivities.enqueue_digest,
                DigestEnqueue(user_id=n.user_id, item=digest_item(n), policy=policy),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary="add to digest",
            )
            outcome.status = NotificationStatus.digested
            return await self._finish()
        if preferences.hold_until is not None:
            # Quiet hours: a durable timer, so a worker restart during the night loses nothing.
            outcome.held_until = preferences.hold_until
            wait = (preferences.hold_until - workflow.now()).total_seconds()
            if wait > 0:
                self._show()
                await workflow.sleep(wait, summary="quiet hours")
        plan = routing.plan_channels(n, self._enabled)
        if not plan:
            outcome.status = NotificationStatus.no_channel
            return await self._finish()

        self._use(plan)
        self._slot_of.update({channel: slot for slot, channel in enumerate(plan)})
        chains = await asyncio.gather(*(self._deliver_with_fallback(slot, c) for slot, c in enumerate(plan)))
        fulfilled = [(chains[self._slot_of[c]] if isinstance(c, ChannelName) else c) is True for c in chains]

        if n.priority is Priority.critical and len(outcome.delivered_channels) < policy.critical_confirmations:
            extra = routing.escalation_channels(policy.fallback_order, self._enabled, n.priority, self._used)
            self._use(extra)
            await asyncio.gather(*(self._deliver(channel, escalation=True) for channel in extra))

        confirmed = len(outcome.delivered_channels)
        outcome.status = routing.final_status(n.priority, fulfilled, confirmed, policy.critical_confirmations)
        if outcome.status is NotificationStatus.unconfirmed:
            outcome.ops_alert = (
                f"critical notification confirmed on {confirmed} of the {policy.critical_confirmations} "
                "channels required, after escalating to every enabled channel"
            )
            await workflow.execute_activity_method(
                AuditActivities.record_ops_alert,
                OpsAlert(notification_id=n.notification_id, kind="critical_unconfirmed", message=outcome.ops_alert),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary="record ops alert",
            )
        return await self._finish()

    async def _deliver_with_fallback(self, slot: int, channel: ChannelName) -> bool | ChannelName:
        """Deliver on `channel`; when it fails for good, move down the fallback order.

        True once delivered, False when every fallback failed, or the channel whose chain this one joined.
        """
        policy, priority = self._request.policy, self._request.notification.priority
        current, fallback_for, tried = channel, None, [channel]
        while True:
            error_type = await self._deliver(current, fallback_for=fallback_for)
            if error_type is None:
                return True
            joined = routing.joined_channel(error_type, self._enabled, priority, self._used, tried)
            if joined is not None:
                return joined
            following = routing.fallback_channel(error_type, policy.fallback_order, self._enabled, priority, self._used)
            if following is None:
                return False
            self._use([following])
            self._slot_of[following] = slot
            tried.append(following)
            current, fallback_for = following, current

    async def _deliver(
        self, channel: ChannelName, *, fallback_for: ChannelName | None = None, escalation: bool = False
    ) -> str | None:
        """Run the delivery activity with its retries; None when delivered, else the final error type."""
        result = ChannelResult(channel=channel, fallback_for=fallback_for, escalation=escalation)
        self._outcome.channels[channel] = result
        self._show()
        request = DeliveryRequest(
            notification=self._request.notification, channel=channel, workflow_id=self._outcome.workflow_id
        )
        try:
            receipt = await workflow.execute_activity_method(
                DeliveryActivities.deliver,
                request,
                start_to_close_timeout=timedelta(seconds=self._request.policy.send_timeout_seconds),
                retry_policy=self._delivery_retry,
                summary=search.delivery_summary(channel, fallback_for, escalation),
            )
        except ActivityError as err:
            cause = err.cause
            result.status = ChannelStatus.failed
            if isinstance(cause, ApplicationError):
                result.error_type = cause.type or "ApplicationError"
                result.error = cause.message
                details = cause.details[0] if cause.details else None
                if isinstance(details, dict):
                    result.attempt_count = int(details.get("attempt", 0))
            else:
                result.error_type = type(cause).__name__ if cause else "ActivityError"
                result.error = str(cause or err)
            self._show()
            return result.error_type
        result.status = ChannelStatus.delivered
        result.attempt_count = receipt.attempt
        result.provider_message_id = receipt.provider_message_id
        self._show()
        return None

    def _use(self, channels: list[ChannelName]) -> None:
        """Mark channels as used; the HeraldChannels search attribute lists them from now on."""
        self._used.update(channels)
        if self._searchable and channels:
            workflow.upsert_search_attributes(search.channels_update(self._used))

    def _show(self) -> None:
        """Per-channel state for the UI's current details (no command: the UI reads it by query)."""
        workflow.set_current_details(search.current_details(self._outcome))

    async def _finish(self) -> NotificationOutcome:
        self._show()
        if self._searchable:
            workflow.upsert_search_attributes(search.status_update(self._outcome.status))
        await workflow.execute_activity_method(
            AuditActivities.record_outcome,
            self._outcome,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"record outcome: {self._outcome.status.value}",
        )
        return self._outcome
