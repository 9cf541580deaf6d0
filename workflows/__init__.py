"""Deterministic orchestration: every workflow a Herald worker runs."""

from workflows.digest import DigestWorkflow
from workflows.heartbeat import HeartbeatWorkflow
from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow
from workflows.resolve import ResolveEndedWorkflow
from workflows.retention import RetentionWorkflow
from workflows.throttle import ThrottleSummaryWorkflow

ALL_WORKFLOWS: list[type] = [
    NotificationWorkflow,
    MonitorWorkflow,
    DigestWorkflow,
    RetentionWorkflow,
    HeartbeatWorkflow,
    ThrottleSummaryWorkflow,
    ResolveEndedWorkflow,
]

__all__ = [
    "ALL_WORKFLOWS",
    "DigestWorkflow",
    "HeartbeatWorkflow",
    "MonitorWorkflow",
    "NotificationWorkflow",
    "ResolveEndedWorkflow",
    "RetentionWorkflow",
    "ThrottleSummaryWorkflow",
]
