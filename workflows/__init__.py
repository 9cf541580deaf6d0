"""Deterministic orchestration: every workflow a Herald worker runs."""

from workflows.digest import DigestWorkflow
from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow
from workflows.retention import RetentionWorkflow

ALL_WORKFLOWS: list[type] = [NotificationWorkflow, MonitorWorkflow, DigestWorkflow, RetentionWorkflow]

__all__ = ["ALL_WORKFLOWS", "DigestWorkflow", "MonitorWorkflow", "NotificationWorkflow", "RetentionWorkflow"]
