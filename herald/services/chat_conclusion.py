"""The question's end in the chats: every Slack and Telegram message it was delivered to is edited, its buttons
replaced by what was decided ("Approved by ada via email, 14:02 UTC", or "Expired"), so nobody clicks a dead one."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from herald.adapters.channels.base import Channel
from herald.adapters.channels.messaging import ChatContent, EditableChannel
from herald.adapters.store import Store
from herald.domain.answers import conclusion_text
from herald.domain.errors import PermanentDeliveryError
from herald.domain.routing import CONTACT_CHANNELS
from herald.models import ChannelName, ChannelStatus, ChatConclusion

log = logging.getLogger("herald.chat")


class ChatService:
    def __init__(self, store: Store, channels: Mapping[ChannelName, Channel]) -> None:
        self.store = store
        self.channels = channels

    async def conclude(self, conclusion: ChatConclusion) -> int:
        """Edit each delivered chat message of the notification; how many were edited. A message the provider
        refuses to edit for good (deleted, the chat gone) is skipped; a transient failure raises, to be retried
        (an edit repeated is the same edit)."""
        attempts = await self.store.notifications.attempts(conclusion.notification_id)
        delivered = {
            (a.channel, a.provider_message_id)
            for a in attempts
            if a.channel in CONTACT_CHANNELS and a.result is ChannelStatus.delivered and a.provider_message_id
        }
        if not delivered:
            return 0
        stored = await self.store.notifications.get_content(conclusion.notification_id)
        contact = await self.store.users.get_contact(conclusion.user_id) if conclusion.user_id else None
        content = ChatContent(stored.title, stored.body, stored.priority) if stored is not None else None
        decision = conclusion_text(conclusion)
        edited = 0
        for channel_name, message_id in sorted(delivered):
            channel = self.channels.get(channel_name)
            if channel is None or not isinstance(channel, EditableChannel) or message_id is None:
                continue  # the outbox (no provider configured): nothing was sent to edit
            try:
                await channel.conclude(message_id, content, decision, contact)
            except PermanentDeliveryError as exc:
                log.warning("%s: could not edit the %s message (%s)", exc.type_name, channel_name.value, exc)
                continue
            edited += 1
        return edited
