"""Answers from the chats: Slack's interactivity requests (a button clicked in a direct message) and Telegram's
bot webhook (a button pressed on an inline keyboard, or `/start <code>` binding a chat to a user).

Each request is authenticated before anything in it is read: Slack's `X-Slack-Signature` (HMAC-SHA256 of
`v0:{timestamp}:{body}` with SLACK_SIGNING_SECRET, a timestamp at most 5 minutes off), Telegram's
`X-Telegram-Bot-Api-Secret-Token` (TELEGRAM_WEBHOOK_SECRET), both compared in constant time; a refused one is a
401 and answers nothing. Then only the person the question went to may answer: the Slack member id, or the
Telegram chat, on the notified user's contact. The answer takes the same path as every channel's (the
notification's workflow, `respond`), so a second click or one after the deadline is refused there.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier

from herald.adapters.channels.messaging import SLACK_ACTION_PREFIX, buttons, telegram_button_index
from herald.adapters.channels.telegram import telegram_message_id
from herald.api.answers import _answering, _respond, recipient_of
from herald.api.deps import Deps, Services
from herald.api.errors import ApiError, ErrorBody
from herald.domain.telegram import START_COMMAND, code_key, parse_start
from herald.models import AnswerChannel, ChannelName, Contact
from herald.services.gateway import AnswerRefused

log = logging.getLogger(__name__)

router = APIRouter(tags=["providers"])

SLACK_INTERACTIONS_PATH = "/v1/providers/slack/interactions"
TELEGRAM_WEBHOOK_PATH = "/v1/providers/telegram/webhook"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Slack wants its 200 within 3 seconds: an answer the workflow has not taken by then is still being taken.
SLACK_ANSWER_WAIT_SECONDS = 2.5
_ID_MAX = 128
_pending: set[asyncio.Task[Any]] = set()  # answers still on their way after Slack got its 200

_PROVIDER_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (401, 404, 415, 422)}


def _ephemeral(text: str) -> JSONResponse:
    """Slack's reply to the clicker alone; the message itself stays as it is."""
    return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": text})


def slack_signature_valid(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """Slack's v0 signature over this exact body, with a timestamp at most 5 minutes from now (slack-sdk's
    SignatureVerifier, which compares in constant time)."""
    if not timestamp or not signature or len(timestamp) > 16 or not timestamp.isdigit():
        return False
    try:
        return SignatureVerifier(secret).is_valid(body, timestamp, signature)
    except (ValueError, UnicodeDecodeError):
        return False


def _form_field(body: bytes, name: str) -> str | None:
    try:
        values = parse_qs(body.decode("utf-8"), keep_blank_values=True).get(name)
    except UnicodeDecodeError:
        return None
    return values[0] if values else None


def _str(value: object, limit: int = _ID_MAX) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


@router.post(SLACK_INTERACTIONS_PATH, response_class=Response, responses={200: {"content": {}}, **_PROVIDER_ERRORS})
async def slack_interactions(request: Request, deps: Deps) -> Response:
    """Slack's interactivity Request URL: a button of a Herald message answers (or acks) the notification it is on.

    Set the Slack app's Interactivity Request URL to `HERALD_PUBLIC_URL` + this path. A refusal the clicker should
    see (another member, a second click, too late) is an ephemeral message; everything else is an empty 200.
    """
    settings = deps.settings.slack
    if settings.signing_secret is None:
        raise ApiError(404, "slack_not_configured", "Slack is not configured here: SLACK_SIGNING_SECRET is unset")
    body = await request.body()
    if not slack_signature_valid(
        settings.signing_secret.get_secret_value(),
        body,
        request.headers.get(SLACK_TIMESTAMP_HEADER),
        request.headers.get(SLACK_SIGNATURE_HEADER),
    ):
        raise ApiError(
            401,
            "invalid_signature",
            f"{SLACK_SIGNATURE_HEADER} does not match this body and timestamp, or the timestamp is over 5 minutes "
            "off: check SLACK_SIGNING_SECRET",
            SLACK_SIGNATURE_HEADER,
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "expected an application/x-www-form-urlencoded body")
    raw = _form_field(body, "payload")
    try:
        payload = json.loads(raw) if raw is not None else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_request", "payload: expected Slack's interaction JSON", "payload")
    if payload.get("type") != "block_actions":
        return Response(status_code=200)  # another kind of interaction: not Herald's
    user = payload.get("user")
    member = _str(user.get("id"), 32) if isinstance(user, dict) else None
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    action_name = _str(action.get("action_id"), 64) or ""
    notification_id = _str(action.get("value"))
    if member is None or not action_name.startswith(SLACK_ACTION_PREFIX) or notification_id is None:
        return Response(status_code=200)  # not a Herald button
    action_id = action_name[len(SLACK_ACTION_PREFIX) :]
    update_id = None
    action_ts = _str(action.get("action_ts"), 32)
    if action_ts is not None:
        update_id = f"slack:{member}:{action_ts}"  # the same click delivered twice is one answer
    return await _slack_answer(deps, notification_id, action_id, member, update_id)


async def _slack_answer(
    services: Services, notification_id: str, action_id: str, member: str, update_id: str | None
) -> Response:
    try:
        recipient = await recipient_of(services, notification_id)
    except ApiError as exc:
        if exc.status == 404:
            return _ephemeral("Herald: this notification is not known here.")
        raise
    contact = await services.store.users.get_contact(recipient.user_id)
    if contact is None or contact.slack_user_id is None or not hmac.compare_digest(contact.slack_user_id, member):
        # The member id stays out of the log: it is personal data.
        log.info("slack click on a notification sent to another member; refused")
        return _ephemeral("Herald: only the person this was sent to can answer it.")
    task = asyncio.create_task(
        _respond(services, notification_id, action_id, recipient.user_id, AnswerChannel.slack, update_id=update_id)
    )
    done, _ = await asyncio.wait({task}, timeout=SLACK_ANSWER_WAIT_SECONDS)
    if not done:
        _pending.add(task)
        task.add_done_callback(_settled)
        return _ephemeral("Herald: your answer is on its way.")
    try:
        task.result()
    except AnswerRefused as exc:
        return _ephemeral(f"Herald: not taken, {exc.reason}.")
    except ApiError as exc:
        return _ephemeral(f"Herald: not taken yet ({exc.message}); try again shortly.")
    return Response(status_code=200)


def _settled(task: asyncio.Task[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.info("a slack answer taken after Slack's reply was not taken: %s", type(task.exception()).__name__)


# --- Telegram ----------------------------------------------------------------------------------------------------


def _telegram_reply(method: str, **fields: Any) -> JSONResponse:
    """A Bot API call made in the webhook's reply (Telegram runs it): no token needed in the API process."""
    return JSONResponse({"method": method, **fields})


@router.post(TELEGRAM_WEBHOOK_PATH, response_class=Response, responses={200: {"content": {}}, **_PROVIDER_ERRORS})
async def telegram_webhook(request: Request, deps: Deps) -> Response:
    """The bot's webhook (setWebhook with `secret_token` = TELEGRAM_WEBHOOK_SECRET): an inline button answers the
    notification its message is; `/start <code>` binds the chat to the user `herald telegram link` named. The
    reply carries answerCallbackQuery (or sendMessage) for Telegram to run."""
    secret = deps.settings.telegram.webhook_secret
    if secret is None:
        raise ApiError(
            404, "telegram_not_configured", "Telegram is not configured here: TELEGRAM_WEBHOOK_SECRET is unset"
        )
    given = request.headers.get(TELEGRAM_SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise ApiError(401, "invalid_secret", f"{TELEGRAM_SECRET_HEADER} does not match", TELEGRAM_SECRET_HEADER)
    try:
        update = json.loads(await request.body())
    except ValueError:
        raise ApiError(422, "invalid_request", "expected a Telegram Update (JSON)") from None
    if not isinstance(update, dict):
        raise ApiError(422, "invalid_request", "expected a Telegram Update (JSON)")
    query = update.get("callback_query")
    if isinstance(query, dict):
        return await _telegram_click(deps, query)
    message = update.get("message")
    if isinstance(message, dict):
        return await _telegram_message(deps, message)
    return Response(status_code=200)


async def _telegram_click(services: Services, query: dict[str, Any]) -> Response:
    query_id = _str(query.get("id"), 64)
    if query_id is None:
        return Response(status_code=200)

    def answer(text: str) -> JSONResponse:
        return _telegram_reply("answerCallbackQuery", callback_query_id=query_id, text=text[:200])

    message = query.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    message_id = message.get("message_id") if isinstance(message, dict) else None
    index = telegram_button_index(query.get("data"))
    if not isinstance(chat_id, int) or not isinstance(message_id, int) or index is None:
        return answer("Herald: this button is not one of Herald's.")
    notification_id = await services.store.notifications.delivered_by_provider(
        ChannelName.telegram, telegram_message_id(chat_id, message_id)
    )
    if notification_id is None:
        return answer("Herald: this message is not known here.")
    recipient = await recipient_of(services, notification_id)
    contact = await services.store.users.get_contact(recipient.user_id)
    if contact is None or contact.telegram_chat_id != chat_id:
        log.info("telegram click from a chat the notification's user has not bound; refused")
        return answer("Herald: only the person this was sent to can answer it.")
    answering = await _answering(services, notification_id)
    outcome = await services.store.notifications.get_outcome(notification_id)
    priority = outcome.priority if outcome is not None else None
    if priority is None:
        herald = await services.client()
        priority = (await herald.status(notification_id)).priority
    offered = buttons(answering.actions, priority)
    if index >= len(offered):
        return answer("Herald: this button is not one of Herald's.")
    action_id, label = offered[index]
    try:
        await _respond(
            services,
            notification_id,
            action_id,
            recipient.user_id,
            AnswerChannel.telegram,
            update_id=f"telegram:{query_id}",
        )
    except AnswerRefused as exc:
        return answer(f"Herald: not taken, {exc.reason}.")
    except ApiError as exc:
        return answer(f"Herald: not taken yet ({exc.message}); try again shortly.")
    return answer(f"Herald: got it, {label}.")


async def _telegram_message(services: Services, message: dict[str, Any]) -> Response:
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    text = message.get("text")
    if not isinstance(chat_id, int) or not isinstance(text, str) or not text.startswith(START_COMMAND):
        return Response(status_code=200)
    code = parse_start(text)
    user_id = await services.store.answers.use_telegram_link(code_key(code)) if code is not None else None
    if user_id is None:
        return _telegram_reply(
            "sendMessage", chat_id=chat_id, text="Herald: that link code is unknown, used or expired."
        )
    contact = await services.store.users.get_contact(user_id)
    bound = (contact or Contact()).model_copy(update={"telegram_chat_id": chat_id})
    await services.store.users.put_contact(user_id, bound)
    log.info("a telegram chat was bound to a user")
    return _telegram_reply("sendMessage", chat_id=chat_id, text="Herald: this chat now gets your notifications.")
