"""Deterministic orchestration: every workflow a Herald worker runs."""

from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow

ALL_WORKFLOWS: list[type] = [NotificationWorkflow, MonitorWorkflow]

__all__ = ["ALL_WORKFLOWS", "MonitorWorkflow", "NotificationWorkflow"]
