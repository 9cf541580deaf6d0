"""Free-text answers without Temporal: the `input: text` action, the text's bounds, who may send text, the SMS
prompt and reply reading for a question answered in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from herald.domain.answers import Refusal, invalid_answer, parse_sms_answer, sms_prompt
from herald.models import ANSWER_TEXT_MAX_CHARS, Action, AgentNotification, AnswerRequest, RespondBody

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
APPROVE, REPLY = Action(id="approve", label="Approve"), Action(id="reply", label="Reply", input="text")


def question(actions: list[Action]) -> AgentNotification:
    return AgentNotification(
        notification_id="q1",
        agent_id="deploy-agent",
        user_id="ada",
        title="Deploy the fix?",
        actions=actions,
        respond_by=NOW + timedelta(hours=1),
        created_at=NOW,
    )


def test_an_action_takes_text_only_when_it_says_so() -> None:
    assert Action.model_validate({"id": "reply", "label": "Reply", "input": "text"}).takes_text
    assert not APPROVE.takes_text
    # A button's action reads as it always did: no `input` key.
    assert APPROVE.model_dump() == {"id": "approve", "label": "Approve"}
    assert REPLY.model_dump(mode="json") == {"id": "reply", "label": "Reply", "input": "text"}
    with pytest.raises(ValidationError, match="input"):
        Action.model_validate({"id": "pick", "label": "Pick", "input": "number"})


@pytest.mark.parametrize(
    "text", ["x" * ANSWER_TEXT_MAX_CHARS, "🚀" * ANSWER_TEXT_MAX_CHARS, "e\u0301" * (ANSWER_TEXT_MAX_CHARS // 2)]
)
def test_text_is_bounded_in_characters_not_bytes(text: str) -> None:
    assert RespondBody(action_id="reply", text=text).text == text
    assert AnswerRequest(action_id="reply", user_id="ada", text=f"\n {text} \t").text == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x" * (ANSWER_TEXT_MAX_CHARS + 1), "is 2001 characters; the limit is 2000"),
        ("🚀" * (ANSWER_TEXT_MAX_CHARS + 1), "is 2001 characters; the limit is 2000"),
        ("", "must not be empty"),
        (" \n\t ", "must not be empty"),
        ("half a \ud83d pair", "holds a lone UTF-16 surrogate"),
        ("\udc00", "holds a lone UTF-16 surrogate"),
    ],
)
def test_text_out_of_bounds_is_refused_naming_text_not_quoting_it(text: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RespondBody(action_id="reply", text=text)
    [error] = refused.value.errors()
    assert error["loc"] == ("text",) and problem in error["msg"]
    assert not text.strip() or text not in error["msg"]  # the message never quotes the text


def test_a_choice_reads_as_it_always_did() -> None:
    """A button's update input carries no `text` key: workers from before free-text answers still decode it."""
    assert AnswerRequest(action_id="approve", user_id="ada").model_dump(mode="json") == {
        "action_id": "approve",
        "user_id": "ada",
        "channel": "api",
    }
    assert AnswerRequest(action_id="reply", user_id="ada", text="hi").model_dump()["text"] == "hi"


def test_lines_and_tabs_are_text() -> None:
    assert RespondBody(action_id="reply", text="line one\r\nline two\tend").text == "line one\r\nline two\tend"


def test_text_missing_or_out_of_place_is_refused_naming_text() -> None:
    n, deadline = question([APPROVE, REPLY]), NOW + timedelta(hours=1)

    def check(action_id: str, text: str | None) -> Refusal | None:
        return invalid_answer(AnswerRequest(action_id=action_id, user_id="ada", text=text), n, NOW, deadline)

    assert check("reply", "ship it") is None
    assert check("approve", None) is None
    assert check("reply", None) == Refusal("InvalidText", "text: is required, action reply is answered in words")
    assert check("approve", "ship it") == Refusal(
        "InvalidText", "text: only an action with input text takes it, and approve is a choice"
    )
    assert check("ack", "seen") == Refusal(
        "InvalidText", "text: only an action with input text takes it, and ack is a choice"
    )
    assert check("maybe", "x") is not None and check("maybe", "x").type == "UnknownAction"  # type: ignore[union-attr]


def test_the_sms_prompt_asks_for_words() -> None:
    assert sms_prompt([APPROVE, REPLY]) == "Reply 1 for Approve, or your words for Reply"
    assert sms_prompt([REPLY]) == "Reply with your words for Reply"
    assert sms_prompt([REPLY, APPROVE]) == "Reply 2 for Approve, or your words for Reply"


def test_an_sms_reply_to_a_question_with_one_text_action() -> None:
    ids = ["approve", "reply"]
    assert parse_sms_answer("Ship it after five", ids, [APPROVE, REPLY]) == ("reply", "Ship it after five")
    assert parse_sms_answer("ok", ids, [APPROVE, REPLY]) == ("reply", "ok")  # any words are the answer
    assert parse_sms_answer(" 1 ", ids, [APPROVE, REPLY]) == ("approve", None)  # a number still chooses
    assert parse_sms_answer("2", ids, [APPROVE, REPLY]) == ("reply", None)  # ...and the workflow asks for words
    assert parse_sms_answer("  ", ids, [APPROVE, REPLY]) == (None, None)
    # Without a text action (or with two, which no reply can tell apart) replies read as before.
    assert parse_sms_answer("ok", ["approve"], [APPROVE]) == ("ack", None)
    second = Action(id="note", label="Note", input="text")
    assert parse_sms_answer("approve", ["approve", "reply", "note"], [APPROVE, REPLY, second]) == ("approve", None)
