"""Answers to questions, decided here without Temporal: who may answer what and when, signed answer links,
SMS reply parsing. The workflow's `respond` validator, the API and the channels all call these.

A signed answer token carries only ids and times (notification id, action id, expiry, a nonce), never a
user's address or the question's text: links end up in mail logs and browser histories.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from herald.config import Settings
from herald.models import (
    ACK_ACTION,
    BUILTIN_ACTIONS,
    REFUSED_ANSWERS_MAX,
    SNOOZE_ACTION,
    Action,
    AgentNotification,
    Answer,
    AnswerChannel,
    AnswerRequest,
    ChatConclusion,
    NotificationOutcome,
    NotificationStatus,
)

# A question without respond_by still ends: after this long nobody can answer it, and its links expire.
DEFAULT_ANSWER_WINDOW_SECONDS = 7 * 24 * 3600
DEFAULT_UNSUBSCRIBE_WINDOW_SECONDS = 90 * 24 * 3600
TOKEN_VERSION = 1
TOKEN_MAX_CHARS = 512
_SIGNING_CONTEXT = b"herald-answer-link-v1"


class AnswerKind(StrEnum):
    answer = "answer"  # one of the notification's own actions: closes the question
    ack = "ack"  # seen: stops escalation, the question stays open
    snooze = "snooze"  # ack, and mute the rule (or agent) for that user for an hour


def check_respond_by(notification: AgentNotification, now: datetime) -> None:
    """Refuse a deadline that has already passed, where a notification enters Herald (API, client).

    Not a model validator: the model is decoded again in the workflow and its activities, after the deadline too.
    """
    if notification.respond_by is not None and notification.respond_by <= now:
        raise ValueError("must be in the future")


def answer_deadline(notification: AgentNotification, window_seconds: float = DEFAULT_ANSWER_WINDOW_SECONDS) -> datetime:
    """When a question stops taking answers: its respond_by, else `window_seconds` after it was created."""
    return notification.respond_by or notification.created_at + timedelta(seconds=window_seconds)


def kind_of(action_id: str, notification: AgentNotification) -> AnswerKind | None:
    """What choosing `action_id` means for this notification; None for an action it does not offer.

    `ack` and `snooze` are built in: they mean the same on every notification, listed as buttons or not.
    """
    if action_id == ACK_ACTION:
        return AnswerKind.ack
    if action_id == SNOOZE_ACTION:
        return AnswerKind.snooze
    if any(action.id == action_id for action in notification.actions):
        return AnswerKind.answer
    return None


def takes_text(action_id: str, notification: AgentNotification) -> bool:
    """Whether `action_id` is one of the notification's actions answered in words (`input: text`)."""
    return any(action.id == action_id and action.takes_text for action in notification.actions)


def text_refusal(action_id: str, has_text: bool, notification: AgentNotification) -> str | None:
    """Why answering `action_id` with (or without) text is refused, naming `text`; None when it fits. The reason
    never quotes the text."""
    if takes_text(action_id, notification):
        return None if has_text else f"text: is required, action {action_id} is answered in words"
    if has_text:
        return f"text: only an action with input text takes it, and {action_id} is a choice"
    return None


def text_actions(actions: list[Action]) -> list[Action]:
    """The actions answered in words (`input: text`)."""
    return [action for action in actions if action.takes_text]


def offered(notification: AgentNotification) -> list[str]:
    """Every action id a person may send: the notification's own, then the built-ins."""
    own = [action.id for action in notification.actions]
    return own + sorted(BUILTIN_ACTIONS - set(own))


@dataclass(frozen=True)
class Refusal:
    """Why an answer is not taken. `type` names the case for the client (HeraldClient maps it to AnswerRefused)."""

    type: str  # UnknownAction, InvalidText, NotRecipient, TooLate, AlreadyAnswered, AlreadyAcknowledged
    reason: str


def invalid_answer(
    request: AnswerRequest, notification: AgentNotification, now: datetime, deadline: datetime
) -> Refusal | None:
    """Why this answer can never be taken (the `respond` validator refuses it unrecorded), or None.

    Unknown action, text missing for a text action or given for any other, another user, past the deadline. A
    repeat answer is a different case: see `late_answer`.
    """
    kind = kind_of(request.action_id, notification)
    if kind is None:
        offers = ", ".join(offered(notification))
        return Refusal("UnknownAction", f"unknown action {request.action_id}: this notification offers {offers}")
    text_problem = text_refusal(request.action_id, request.text is not None, notification)
    if text_problem is not None:
        return Refusal("InvalidText", text_problem)
    if request.user_id != notification.user_id:
        return Refusal("NotRecipient", "only the notified user may answer this notification")
    if kind is AnswerKind.answer and now >= deadline:
        return Refusal("TooLate", f"too late: answers were taken until {deadline.astimezone(UTC).isoformat()}")
    return None


def late_answer(
    request: AnswerRequest, notification: AgentNotification, outcome: NotificationOutcome
) -> Refusal | None:
    """Why a valid answer is refused because another came first (recorded in the outcome), or None to take it."""
    kind = kind_of(request.action_id, notification)
    if kind is AnswerKind.answer and outcome.answer is not None:
        first = outcome.answer
        when = first.answered_at.isoformat()
        return Refusal("AlreadyAnswered", f"already answered: {first.action_id} via {first.channel.value} at {when}")
    if kind in (AnswerKind.ack, AnswerKind.snooze) and outcome.acknowledged is not None:
        first = outcome.acknowledged
        when = first.answered_at.isoformat()
        return Refusal("AlreadyAcknowledged", f"already acknowledged via {first.channel.value} at {when}")
    return None


def joined_outcome(duplicate: NotificationOutcome, original: NotificationOutcome | None) -> NotificationOutcome:
    """A duplicate question's ending, taken from the question it repeats: that one's status, answer and ack (the
    person was asked once, and both agents learn what they said). Without the original's final outcome (it was
    still open when the duplicate's own deadline passed) the duplicate has `expired`."""
    if original is None or original.status is NotificationStatus.pending:
        return duplicate.model_copy(update={"status": NotificationStatus.expired})
    return duplicate.model_copy(
        update={"status": original.status, "answer": original.answer, "acknowledged": original.acknowledged}
    )


def refusals_full(outcome: NotificationOutcome) -> bool:
    """Refused answers are recorded up to a limit, so a flood of retries cannot grow the history without end."""
    return len(outcome.refused_answers) >= REFUSED_ANSWERS_MAX


# A refused answer's reason as the store keeps it: Herald's own text (it quotes an action id and lists the offered
# ones, a few hundred characters at most), cut here so no refusal stores more whatever it quotes.
REFUSED_REASON_MAX_CHARS = 500


def bounded_reason(reason: str) -> str:
    """A refusal's reason cut to REFUSED_REASON_MAX_CHARS (an ellipsis marks the cut)."""
    if len(reason) <= REFUSED_REASON_MAX_CHARS:
        return reason
    return reason[: REFUSED_REASON_MAX_CHARS - 1] + "…"


def snooze_scope(rule: str | None, agent_id: str) -> str:
    """What a snooze mutes: the rule that fired the notification, else everything from its agent."""
    return f"rule:{rule}" if rule else f"agent:{agent_id}"


def snooze_scopes(rule: str | None, agent_id: str) -> list[str]:
    """Every snooze that mutes a notification: of its rule, if it has one, and of its whole agent."""
    return [snooze_scope(rule, agent_id), *([snooze_scope(None, agent_id)] if rule else [])]


def rule_of(notification: AgentNotification) -> str | None:
    """The rule that fired a notification (rules put their name in metadata), if any."""
    rule = notification.metadata.get("rule")
    return rule if isinstance(rule, str) and rule else None


# --- signed answer links -------------------------------------------------------------------------------------


class TokenError(ValueError):
    """An answer link that must not be honoured; `code` is `forged`, `expired` or `malformed`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AnswerToken:
    """What a signed link stands for. `action_id` None: the holder picks the action (a webhook's respond_url)."""

    notification_id: str
    action_id: str | None
    expires_at: int  # epoch seconds
    nonce: str  # makes each link single-use: the API records it when the link is used
    channel: AnswerChannel = AnswerChannel.email  # which channel carried the link: the answer's channel


def link_update_id(token: AnswerToken) -> str:
    """The update id of the answer a link gives: one per link, so the link's retries (after a timeout, a lost
    reply, two clicks at once) are one answer. A hash of the nonce: histories show update ids in clear."""
    return "link/" + hashlib.sha256(f"{token.notification_id}/{token.nonce}".encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str, context: bytes = _SIGNING_CONTEXT) -> bytes:
    key = hmac.new(secret, context, hashlib.sha256).digest()  # a key for this use only
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()


def sign_claims(secret: bytes, claims: dict[str, object], context: bytes) -> str:
    """`<payload>.<mac>`, both base64url: the claims as JSON, HMAC-SHA256 with a key derived from the server's
    secret for `context` alone, so a token made for one use (an answer link) never verifies as another's."""
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(secret, payload, context))}"


def verify_claims(secret: bytes, raw: str, context: bytes, what: str) -> dict[str, Any]:
    """The claims of a token `sign_claims` made for `context`; TokenError (`malformed`, `forged`) naming `what`."""
    if len(raw) > TOKEN_MAX_CHARS or raw.count(".") != 1:
        raise TokenError("malformed", f"this {what} is not one Herald made")
    payload, mac = raw.split(".")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise TokenError("malformed", f"this {what} is not one Herald made") from None
    if not hmac.compare_digest(given, _mac(secret, payload, context)):
        raise TokenError("forged", f"this {what}'s signature does not match: it was altered or not made here")
    try:
        claims = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", f"this {what} is not one Herald made") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed", f"this {what} is not one Herald made")
    return claims


def sign_token(secret: bytes, token: AnswerToken) -> str:
    """`<payload>.<mac>`, both base64url: HMAC-SHA256 with a key derived from the server's answer secret."""
    body: dict[str, object] = {
        "v": TOKEN_VERSION,
        "n": token.notification_id,
        "e": token.expires_at,
        "j": token.nonce,
        "c": token.channel.value,
    }
    if token.action_id is not None:
        body["a"] = token.action_id
    return sign_claims(secret, body, _SIGNING_CONTEXT)


def verify_token(secret: bytes, raw: str, now: datetime) -> AnswerToken:
    """The token's content if its signature holds and it has not expired; else TokenError saying which."""
    body = verify_claims(secret, raw, _SIGNING_CONTEXT, "answer link")
    try:
        token = AnswerToken(
            notification_id=str(body["n"]),
            action_id=str(body["a"]) if "a" in body else None,
            expires_at=int(body["e"]),
            nonce=str(body["j"]),
            channel=AnswerChannel(body["c"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed", "this answer link is not one Herald made") from None
    if body.get("v") != TOKEN_VERSION:
        raise TokenError("malformed", "this answer link comes from another Herald version")
    if now.timestamp() >= token.expires_at:
        raise TokenError("expired", "this answer link has expired")
    return token


@dataclass(frozen=True)
class AnswerLinks:
    """Mints the signed answer links channels put in front of a person (the delivery activity calls it).

    `base_url` is Herald's public API URL; `window_seconds` bounds links of questions without respond_by.
    """

    secret: bytes
    base_url: str
    window_seconds: float = DEFAULT_ANSWER_WINDOW_SECONDS
    # How long an email's one-click unsubscribe link (herald.unsubscribe) works, signed with the same secret.
    unsubscribe_window_seconds: float = DEFAULT_UNSUBSCRIBE_WINDOW_SECONDS

    def token(self, notification: AgentNotification, action_id: str | None, channel: AnswerChannel) -> str:
        expires = int(answer_deadline(notification, self.window_seconds).timestamp())
        nonce = secrets.token_hex(12)
        return sign_token(self.secret, AnswerToken(notification.notification_id, action_id, expires, nonce, channel))

    def url(self, token: str) -> str:
        return f"{self.base_url.rstrip('/')}/v1/answers/{token}"

    def action_urls(self, notification: AgentNotification) -> dict[str, str]:
        """One single-use link per action (email), each bound to its action."""
        return {
            action.id: self.url(self.token(notification, action.id, AnswerChannel.email))
            for action in notification.actions
        }

    def respond_url(self, notification: AgentNotification, channel: AnswerChannel) -> str:
        """One single-use link where the holder POSTs `{"action_id"}` (webhooks, Web Push service workers)."""
        return self.url(self.token(notification, None, channel))


# --- SMS replies -------------------------------------------------------------------------------------------------

_ACK_WORDS = frozenset({"ack", "ok", "okay", "seen", "got it"})
_SNOOZE_WORDS = frozenset({"snooze", "snooze 1h", "later"})
_PUNCTUATION = re.compile(r"[\s.!,;:]+")


def sms_prompt(actions: list[Action]) -> str:
    """ "Reply 1 for Approve, 2 for Deny": numbered in the order the agent listed the actions. An action answered
    in words takes the reply itself: "Reply 1 for Approve, or your words for Comment" (its number is skipped)."""
    if not actions:
        return ""
    choices = [f"{number} for {a.label}" for number, a in enumerate(actions, 1) if not a.takes_text]
    words = [f"your words for {a.label}" for a in actions if a.takes_text]
    if not choices:
        return "Reply with " + " or ".join(words)
    return "Reply " + ", ".join(choices) + "".join(f", or {w}" for w in words)


def parse_sms_reply(body: str, action_ids: list[str]) -> str | None:
    """The action an SMS reply chooses: a number (1-based, as `sms_prompt` lists them), an action id, ACK or
    SNOOZE (any case, surrounding punctuation ignored); None when the reply means none of them."""
    text = _PUNCTUATION.sub(" ", body).strip().lower()
    if not text:
        return None
    if text.isdigit():
        number = int(text)
        return action_ids[number - 1] if 1 <= number <= len(action_ids) else None
    for action_id in action_ids:
        if text == action_id.lower():
            return action_id
    if text in _ACK_WORDS:
        return ACK_ACTION
    if text in _SNOOZE_WORDS:
        return SNOOZE_ACTION
    return None


def parse_sms_answer(reply: str, action_ids: list[str], actions: list[Action]) -> tuple[str | None, str | None]:
    """What an SMS reply answers, and with which words: a number chooses that action (numbered as `sms_prompt`
    numbers them); to a question with one action answered in words (`input: text`), any other reply is its text;
    otherwise as `parse_sms_reply` reads it (an action id, ACK, SNOOZE)."""
    texts = text_actions(actions)
    if len(texts) == 1 and reply.strip() and not reply.strip().isdigit():
        return texts[0].id, reply
    return parse_sms_reply(reply, action_ids), None


def links_from_settings(settings: Settings) -> AnswerLinks | None:
    """The answer links under these settings; None without HERALD_ANSWER_SECRET (then no links are sent)."""
    if settings.answers.answer_secret is None:
        return None
    return AnswerLinks(
        settings.answers.answer_secret.get_secret_value().encode(),
        settings.api_url,
        settings.answers.answer_window_seconds,
        settings.answers.unsubscribe_window_seconds,
    )


def load_or_create_secret(path: Path) -> str:
    """`herald dev`'s answer secret, kept in HERALD_HOME/answer.key (mode 0600), made once: links sent before a
    restart keep working after it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret


def phone_key(phone: str) -> str:
    """How the store finds a phone's open questions without keeping another copy of the number."""
    return hashlib.sha256(phone.strip().encode()).hexdigest()


def _said(answer: Answer, what: str) -> str:
    at = answer.answered_at.astimezone(UTC).strftime("%H:%M")
    return f"{what} by {answer.user_id} via {answer.channel.value}, {at} UTC"


def conclusion_text(conclusion: ChatConclusion) -> str:
    """What a chat message says in place of its buttons once the question ended: `Approved by ada via email,
    14:02 UTC`, or `Expired` (with who had seen it, when someone acked); a question to a group, what the group
    decided (`Approved by ada and grace`)."""
    if conclusion.decision is not None:
        return conclusion.decision
    if conclusion.answer is not None:
        return _said(conclusion.answer, conclusion.label or conclusion.answer.action_id)
    if conclusion.taken is not None:  # an escalation another person acked
        return _said(conclusion.taken, "Acknowledged")
    ending = "Expired" if conclusion.status == "expired" else conclusion.status.replace("_", " ").capitalize()
    if conclusion.acknowledged is not None:
        return f"{ending} ({_said(conclusion.acknowledged, 'seen')})"
    return ending
