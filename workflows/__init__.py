"""Deterministic orchestration: every workflow a Herald worker runs."""

from workflows.notification import NotificationWorkflow

ALL_WORKFLOWS: list[type] = [NotificationWorkflow]

__all__ = ["ALL_WORKFLOWS", "NotificationWorkflow"]
