"""What agents use: `from starter import HeraldClient`."""

from starter.client import AnswerRefused, HeraldClient, NotificationHandle, connect_temporal

__all__ = ["AnswerRefused", "HeraldClient", "NotificationHandle", "connect_temporal"]
