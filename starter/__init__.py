"""What agents use: `from starter import HeraldClient`."""

from starter.client import AnswerRefused, AnswerTimeout, HeraldClient, NotificationHandle, connect_temporal

__all__ = ["AnswerRefused", "AnswerTimeout", "HeraldClient", "NotificationHandle", "connect_temporal"]
