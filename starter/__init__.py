"""What agents use: `from starter import HeraldClient`."""

from starter.client import HeraldClient, NotificationHandle, connect_temporal

__all__ = ["HeraldClient", "NotificationHandle", "connect_temporal"]
