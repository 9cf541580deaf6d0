"""Answers from the chats: Slack's interactivity requests (a button clicked in a direct message), Slack's Events
API (a reply in the question message's thread) and Telegram's bot webhook (a button pressed on an inline keyboard,
a message replying to the question's message, or `/start <code>` binding a chat to a user). A reply's words answer
the question's one action with `input: text`; a question with none or several takes no reply.

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
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier

from herald.adapters.channels.messaging import SLACK_ACTION_PREFIX, buttons, slack_unescape, telegram_button_index
from herald.adapters.channels.slack import slack_message_id
from herald.adapters.channels.telegram import chat_digest, telegram_message_id
from herald.api.answers import _answering, _respond, recipient_of
from herald.api.deps import Deps, Services
from herald.api.errors import ApiError, ErrorBody
from herald.domain.answers import text_actions
from herald.domain.telegram import START_COMMAND, code_key, parse_start
from herald.models import AnswerChannel, ChannelName, Contact
from herald.services.gateway import AnswerRefused

log = logging.getLogger(__name__)

router = APIRouter(tags=["providers"])

SLACK_INTERACTIONS_PATH = "/v1/providers/slack/interactions"
SLACK_EVENTS_PATH = "/v1/providers/slack/events"
TELEGRAM_WEBHOOK_PATH = "/v1/providers/telegram/webhook"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Slack wants its 200 within 3 seconds: an answer the workflow has not taken by then is still being taken.
SLACK_ANSWER_WAIT_SECONDS = 2.5
_ID_MAX = 128
_CHALLENGE_MAX = 256
TELEGRAM_SAY_MAX = 300
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


async def _slack_signed_body(request: Request, services: Services) -> bytes:
    """The raw body of a request Slack signed: 404 when Slack is not configured, 401 for a signature that does not
    match it (or a timestamp over 5 minutes off), before anything in the body is read."""
    settings = services.settings.slack
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
    return body


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _text_action(services: Services, notification_id: str) -> str | None:
    """The question's one action answered in words (`input: text`); None when it has none, or several (a reply
    can't say which it answers)."""
    texts = text_actions((await _answering(services, notification_id)).actions)
    return texts[0].id if len(texts) == 1 else None


@router.post(SLACK_INTERACTIONS_PATH, response_class=Response, responses={200: {"content": {}}, **_PROVIDER_ERRORS})
async def slack_interactions(request: Request, deps: Deps) -> Response:
    """Slack's interactivity Request URL: a button of a Herald message answers (or acks) the notification it is on.

    Set the Slack app's Interactivity Request URL to `HERALD_PUBLIC_URL` + this path. A refusal the clicker should
    see (another member, a second click, too late) is an ephemeral message; everything else is an empty 200.
    """
    body = await _slack_signed_body(request, deps)
    if _content_type(request) != "application/x-www-form-urlencoded":
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


# --- Slack's Events API: a reply in the question message's thread --------------------------------------------


@dataclass(frozen=True)
class ThreadReply:
    """A person's message in a thread: where (the conversation, the thread's parent ts), who, and what they wrote."""

    channel: str
    thread_ts: str
    member: str
    text: str


# A message event with one of these subtypes is still a person's message; every other subtype (an edit, a deletion,
# a bot's message, a join, ...) is not an answer.
_PERSON_SUBTYPES = frozenset({None, "thread_broadcast"})


def slack_thread_reply(event: object) -> ThreadReply | None:
    """A `message` event that is a person's reply in a thread (not the thread's parent, not an edit, not a bot's),
    or None."""
    if not isinstance(event, dict) or event.get("type") != "message":
        return None
    if event.get("subtype") not in _PERSON_SUBTYPES or event.get("bot_id") is not None:
        return None
    channel, member = _str(event.get("channel"), 32), _str(event.get("user"), 32)
    ts, thread_ts = _str(event.get("ts"), 32), _str(event.get("thread_ts"), 32)
    text = event.get("text")
    if channel is None or member is None or ts is None or thread_ts is None or ts == thread_ts:
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    return ThreadReply(channel, thread_ts, member, slack_unescape(text))


@router.post(
    SLACK_EVENTS_PATH,
    response_class=Response,
    responses={200: {"content": {}}, **_PROVIDER_ERRORS, 503: {"model": ErrorBody}},
)
async def slack_events(request: Request, deps: Deps) -> Response:
    """Slack's Events API Request URL (Event Subscriptions, the bot event `message.im`): a reply in the thread of a
    Herald question's message, by the member it was sent to, answers the question's one text action with the
    reply's words. `url_verification` is answered with its challenge; any other event is an empty 200.

    Slack re-sends an event it got no 200 for within 3 seconds (`X-Slack-Retry-Num`); every delivery of one event
    is one answer (its `event_id` names the answer). A 503 (Temporal did not take the answer) makes Slack retry.
    """
    body = await _slack_signed_body(request, deps)
    if _content_type(request) != "application/json":
        raise ApiError(415, "unsupported_media_type", "expected an application/json body")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_request", "expected Slack's event JSON")
    kind = payload.get("type")
    if kind == "url_verification":
        challenge = _str(payload.get("challenge"), _CHALLENGE_MAX)
        if challenge is None:
            raise ApiError(422, "invalid_request", "challenge: expected Slack's challenge string", "challenge")
        return JSONResponse({"challenge": challenge})
    event_id = _str(payload.get("event_id"), 64)
    reply = slack_thread_reply(payload.get("event")) if kind == "event_callback" else None
    if reply is None or event_id is None:
        return Response(status_code=200)  # not a person's reply in a thread: nothing to answer
    return await _slack_thread_answer(deps, reply, f"slack-event:{event_id}")


async def _slack_thread_answer(services: Services, reply: ThreadReply, update_id: str) -> Response:
    notification_id = await services.store.notifications.delivered_by_provider(
        ChannelName.slack, slack_message_id(reply.channel, reply.thread_ts)
    )
    if notification_id is None:
        return Response(status_code=200)  # a thread that is not a Herald message's
    try:
        recipient = await recipient_of(services, notification_id)
    except ApiError as exc:
        if exc.status == 404:
            return Response(status_code=200)
        raise
    contact = await services.store.users.get_contact(recipient.user_id)
    if contact is None or contact.slack_user_id is None or not hmac.compare_digest(contact.slack_user_id, reply.member):
        log.info("slack thread reply by another member than the notified one; nothing answered")
        return Response(status_code=200)
    action_id = await _text_action(services, notification_id)
    if action_id is None:
        log.info("slack thread reply to a question without exactly one text action; nothing answered")
        return Response(status_code=200)
    task = asyncio.create_task(
        _respond(
            services,
            notification_id,
            action_id,
            recipient.user_id,
            AnswerChannel.slack,
            update_id=update_id,
            text=reply.text,
        )
    )
    done, _ = await asyncio.wait({task}, timeout=SLACK_ANSWER_WAIT_SECONDS)
    if not done:
        _pending.add(task)
        task.add_done_callback(_settled)
        return Response(status_code=200)
    try:
        task.result()
    except AnswerRefused as exc:
        log.info("slack thread reply not taken: %s", exc.code)
    except ApiError as exc:
        if exc.status >= 500:
            raise  # Slack retries the event, and its event_id keeps the retries one answer
        log.info("slack thread reply not taken: %s", exc.code)
    return Response(status_code=200)


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
    if not isinstance(chat_id, int) or not isinstance(text, str):
        return Response(status_code=200)
    replied = message.get("reply_to_message")
    if isinstance(replied, dict):
        return await _telegram_text_answer(services, chat_id, message, replied, text)
    if not text.startswith(START_COMMAND):
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


async def _telegram_text_answer(
    services: Services, chat_id: int, message: dict[str, Any], replied: dict[str, Any], text: str
) -> Response:
    """A message replying to a Herald question's message, from the chat it was sent to: the words answer the
    question's one text action (with none or several, nothing is answered). A refusal is said in the chat."""
    message_id, replied_id = message.get("message_id"), replied.get("message_id")
    sender = message.get("from")
    if not isinstance(message_id, int) or not isinstance(replied_id, int) or not text.strip():
        return Response(status_code=200)
    if isinstance(sender, dict) and sender.get("is_bot") is True:
        return Response(status_code=200)
    notification_id = await services.store.notifications.delivered_by_provider(
        ChannelName.telegram, telegram_message_id(chat_id, replied_id)
    )
    if notification_id is None:
        return Response(status_code=200)  # a reply to a message that is not a Herald question's
    recipient = await recipient_of(services, notification_id)
    contact = await services.store.users.get_contact(recipient.user_id)
    if contact is None or contact.telegram_chat_id != chat_id:
        log.info("telegram reply from a chat the notification's user has not bound; nothing answered")
        return Response(status_code=200)
    action_id = await _text_action(services, notification_id)
    if action_id is None:
        log.info("telegram reply to a question without exactly one text action; nothing answered")
        return Response(status_code=200)

    def say(words: str) -> JSONResponse:
        return _telegram_reply(
            "sendMessage", chat_id=chat_id, text=words[:TELEGRAM_SAY_MAX], reply_parameters={"message_id": message_id}
        )

    try:
        await _respond(
            services,
            notification_id,
            action_id,
            recipient.user_id,
            AnswerChannel.telegram,
            # The same message delivered again is one answer; the chat is named by its hash, never its id.
            update_id=f"telegram-reply:{chat_digest(chat_id)}:{message_id}",
            text=text,
        )
    except AnswerRefused as exc:
        return say(f"Herald: not taken, {exc.reason}.")
    except ApiError as exc:
        if exc.status >= 500:
            return say(f"Herald: not taken yet ({exc.message}); try again shortly.")
        return say(f"Herald: not taken, {exc.message}.")
    return Response(status_code=200)  # the question's message is edited to say what was decided
