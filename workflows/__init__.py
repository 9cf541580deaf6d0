"""Deterministic orchestration: every workflow a Herald worker runs."""

from workflows.digest import DigestWorkflow
from workflows.monitor import MonitorWorkflow
from workflows.notification import NotificationWorkflow

ALL_WORKFLOWS: list[type] = [NotificationWorkflow, MonitorWorkflow, DigestWorkflow]

__all__ = ["ALL_WORKFLOWS", "DigestWorkflow", "MonitorWorkflow", "NotificationWorkflow"]
