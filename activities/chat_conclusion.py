"""conclude_chat: at a question's end, edit its Slack and Telegram messages to say what was decided."""

from __future__ import annotations

from temporalio import activity

from activities.delivery import to_application_error
from herald.domain.errors import DeliveryError
from herald.models import ChatConcluded, ChatConclusion
from herald.services.chat_conclusion import ChatService


class ChatActivities:
    def __init__(self, service: ChatService) -> None:
        self._service = service

    @activity.defn(name="conclude_chat")
    async def conclude_chat(self, conclusion: ChatConclusion) -> ChatConcluded:
        """Temporal retries what may pass (Slack's 5xx, a rate limit, a timeout), on the delivery schedule."""
        try:
            return ChatConcluded(edited=await self._service.conclude(conclusion))
        except DeliveryError as exc:
            raise to_application_error(exc, activity.info().attempt) from None
