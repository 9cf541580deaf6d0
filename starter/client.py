"""HeraldClient: how an agent starts notifications and reads their outcome, through Temporal."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError

from herald.config import Settings
from herald.models import AgentNotification, DeliveryPolicy, NotificationOutcome, NotificationRequest
from workflows.notification import NotificationWorkflow


async def connect_temporal(settings: Settings) -> Client:
    """A Temporal client with Herald's data conversion (pydantic); the one way everything connects."""
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
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

    def __init__(self, client: Client, task_queue: str, policy: DeliveryPolicy | None = None) -> None:
        self.temporal = client
        self.task_queue = task_queue
        self.policy = policy or DeliveryPolicy()

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> HeraldClient:
        settings = settings or Settings()
        return cls(await connect_temporal(settings), settings.task_queue, settings.delivery_policy())

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
            )
        except WorkflowAlreadyStartedError:
            handle = self.temporal.get_workflow_handle_for(NotificationWorkflow.run, workflow_id)
        return NotificationHandle(notification.notification_id, handle)

    def get_handle(self, notification_id: str) -> NotificationHandle:
        handle = self.temporal.get_workflow_handle_for(NotificationWorkflow.run, f"notification/{notification_id}")
        return NotificationHandle(notification_id, handle)
