"""Questions and answers: the actions a notification offers, and the person's answer flowing back to the agent."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from herald.models.common import NOT_SPACE, SPACE, Identifier, OneField, stripped_text, stripped_text_pattern

ACTIONS_MAX = 5
ACTION_LABEL_MAX_CHARS = 64
ACTION_ID_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
_ACTION_ID = re.compile(ACTION_ID_REGEX)

# Built-in responses, accepted on every notification whether or not the agent offered them as buttons:
# `ack` says "seen, I'm on it" (it stops escalation, and leaves a question open); `snooze` acks and mutes the
# notification's rule (or, without a rule, its agent) for that user for SNOOZE_SECONDS. An agent may list
# them among its actions to show them as buttons; they still mean this, never an answer.
ACK_ACTION = "ack"
SNOOZE_ACTION = "snooze"
BUILTIN_ACTIONS = frozenset({ACK_ACTION, SNOOZE_ACTION})
SNOOZE_SECONDS = 3600
# Answers refused after the first valid one are kept in the outcome, up to this many (then refused unrecorded).
REFUSED_ANSWERS_MAX = 20
# A free-text answer (to an action with `input: "text"`): 1-2000 characters (code points, not bytes) once its
# surrounding whitespace is stripped. It is personal data: it travels in Temporal payloads (encrypted by the codec
# when HERALD_CODEC_KEYS is set) and is kept in the store's outcome, like the body; no message or log quotes it.
ANSWER_TEXT_MAX_CHARS = 2000
TEXT_INPUT = "text"
# Lone UTF-16 surrogates are not text: the API's body guard refuses them in every JSON body, but a WebSocket frame's
# JSON may still hold `"\\ud800"`, which no encoder downstream (the store, Temporal's payloads) accepts.
_NOT_TEXT = re.compile("[\ud800-\udfff]")


def _action_id(value: str) -> str:
    if not _ACTION_ID.fullmatch(value):
        raise ValueError("must be 1-32 characters of letters, digits, _ and -, starting with a letter or digit")
    return value


def answer_text(value: str) -> str:
    """A free-text answer as Herald keeps it: stripped, 1-ANSWER_TEXT_MAX_CHARS characters (code points), no lone
    surrogates. The errors name the problem, never the text (it is personal data)."""
    value = stripped_text(value, ANSWER_TEXT_MAX_CHARS)
    if _NOT_TEXT.search(value):
        raise ValueError("holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
    return value


AnswerText = Annotated[
    str,
    AfterValidator(answer_text),
    Field(
        description=f"the person's own words for an action with `input: text`: 1-{ANSWER_TEXT_MAX_CHARS} characters "
        "once surrounding whitespace is stripped; absent for every other action",
        json_schema_extra={"pattern": stripped_text_pattern(ANSWER_TEXT_MAX_CHARS)},
    ),
]


ActionId = Annotated[
    str,
    AfterValidator(_action_id),
    WithJsonSchema({"type": "string", "pattern": ACTION_ID_REGEX, "minLength": 1, "maxLength": 32}),
]
# A label is 1-64 characters once each run of whitespace is one space and the ends are stripped.
ACTION_LABEL_REGEX = (
    f"^{SPACE}*{NOT_SPACE}(?:{SPACE}+(?={NOT_SPACE})|{NOT_SPACE}){{0,{ACTION_LABEL_MAX_CHARS - 1}}}{SPACE}*$"
)


class Action(BaseModel):
    """One choice a notification offers: a button in the inbox and Web Push, a link in email, a number in SMS.
    With `input: "text"` the person answers it in their own words (a text box; any other SMS reply), and the
    answer carries `text`."""

    model_config = ConfigDict(extra="forbid")

    id: ActionId
    label: str = Field(
        description=f"1-{ACTION_LABEL_MAX_CHARS} characters once whitespace runs are collapsed and the ends stripped",
        json_schema_extra={"pattern": ACTION_LABEL_REGEX},
    )
    input: Literal["text"] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # a button's action reads as it always did
        description="`text`: answered with the person's own words (`text`, 1-2000 characters)",
    )

    @property
    def takes_text(self) -> bool:
        return self.input == TEXT_INPUT

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be empty")
        if len(value) > ACTION_LABEL_MAX_CHARS:
            raise ValueError(f"is {len(value)} characters; the limit is {ACTION_LABEL_MAX_CHARS}")
        return value


class AnswerChannel(StrEnum):
    """Where an answer came from: a delivery channel, or the API directly (an agent's UI, the CLI)."""

    push = "push"
    email = "email"
    sms = "sms"
    webhook = "webhook"
    slack = "slack"
    telegram = "telegram"
    api = "api"


class Answer(BaseModel):
    """The person's choice, as the workflow accepted it."""

    action_id: str
    user_id: str
    channel: AnswerChannel
    answered_at: datetime
    text: str | None = Field(default=None, description="the person's words, for an action with `input: text`")


class RefusedAnswer(BaseModel):
    """An answer that came after the first valid one (or after an ack, a second ack): kept for the record (never
    its text: only what was answered, how and why it was refused)."""

    action_id: str
    channel: AnswerChannel
    at: datetime
    reason: str


class AnswerRequest(BaseModel):
    """The `respond` update's input: who chose what, through which channel."""

    model_config = ConfigDict(extra="forbid")

    action_id: ActionId
    user_id: Identifier
    channel: AnswerChannel = AnswerChannel.api
    # Left out when absent: a choice's update input reads exactly as before, so a worker not yet upgraded takes it.
    text: AnswerText | None = Field(default=None, exclude_if=lambda value: value is None)


class Snooze(BaseModel):
    """A user's mute of one rule (`rule:<name>`) or one agent (`agent:<id>`) until a moment."""

    user_id: str
    scope: str
    until: datetime

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class RespondBody(BaseModel):
    """`POST /v1/notifications/{id}/respond` and the webhook's `respond_url`: the chosen action (and, for an action
    with `input: text`, the person's words)."""

    model_config = ConfigDict(extra="forbid")

    action_id: ActionId = Field(description="one of the notification's action ids, or `ack` / `snooze`")
    text: AnswerText | None = None


class CallbackReceipt(OneField):
    """What `call_agent` reports of a delivered callback: the receiver's message id, or the outbox file."""

    receipt: str


class AgentCallback(BaseModel):
    """What the `call_agent` activity POSTs to a question's callback_url once the question has ended, however it
    ended: answered, expired, no_channel, failed, unconfirmed, ... (a duplicate with the ending of the question it
    repeats, naming it in `duplicate_of`)."""

    url: str
    notification_id: str
    workflow_id: str
    agent_id: str
    status: str  # the outcome's final status
    answer: Answer | None = None
    respond_by: datetime | None = None
    duplicate_of: str | None = None


class ChatConclusion(BaseModel):
    """What the `conclude_chat` activity writes over a question's chat messages (Slack, Telegram) at its end: who
    decided what, where and when, or that it expired. Ids, an action's label and times only: no contact."""

    notification_id: str
    user_id: str | None = None  # whose contact says where the Telegram message is
    status: str  # the question's ending: answered, expired
    answer: Answer | None = None
    label: str | None = None  # the answered action's label
    acknowledged: Answer | None = None
    decision: str | None = None  # a question to a group, decided: "Approved by ada and grace"
    taken: Answer | None = (
        None  # an escalation: the other person's ack that stopped it ("Acknowledged by ada via slack")
    )


class ChatConcluded(OneField):
    """How many chat messages `conclude_chat` edited."""

    edited: int
