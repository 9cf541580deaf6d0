"""The dev default for email, SMS and webhooks: one JSON file per message, as the provider would get it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herald.adapters.channels.base import OutboundMessage, SendResult
from herald.models import ChannelName

Renderer = Callable[[OutboundMessage], dict[str, Any]]


class OutboxChannel:
    """Writes `<outbox>/<channel>/<notification_id>.json`; writing the same message twice replaces it."""

    def __init__(self, name: ChannelName, outbox_dir: Path, render: Renderer) -> None:
        self.name = name
        self.directory = outbox_dir / name.value
        self._render = render

    async def send(self, message: OutboundMessage) -> SendResult:
        document = {
            "channel": self.name.value,
            "idempotency_key": message.idempotency_key,
            "notification_id": message.notification.notification_id,
            "message": self._render(message),
        }
        path = self.directory / f"{message.notification.notification_id}.json"
        await asyncio.to_thread(_write_atomically, path, document)
        return SendResult(provider_message_id=f"outbox:{self.name.value}/{path.name}")


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    os.replace(tmp, path)
