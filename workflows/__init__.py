"""Deterministic orchestration: every workflow a Herald worker runs."""

from workflows.digest import DigestWorkflow
from workflows.group import GroupWorkflow
from workflows.heartbeat import HeartbeatWorkflow
from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow
from workflows.resolve import ResolveEndedWorkflow
from workflows.retention import RetentionWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.throttle import ThrottleSummaryWorkflow

ALL_WORKFLOWS: list[type] = [
    NotificationWorkflow,
    MonitorWorkflow,
    DigestWorkflow,
    RetentionWorkflow,
    HeartbeatWorkflow,
    ThrottleSummaryWorkflow,
    ResolveEndedWorkflow,
    GroupWorkflow,
    SubscriptionWorkflow,
]

__all__ = [
    "ALL_WORKFLOWS",
    "DigestWorkflow",
    "GroupWorkflow",
    "HeartbeatWorkflow",
    "MonitorWorkflow",
    "NotificationWorkflow",
    "ResolveEndedWorkflow",
    "RetentionWorkflow",
    "SubscriptionWorkflow",
    "ThrottleSummaryWorkflow",
]
