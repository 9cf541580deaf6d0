"""Answers without Temporal: the question model, who may answer what and when, signed links, SMS replies."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from herald.domain.answers import (
    REFUSED_REASON_MAX_CHARS,
    AnswerKind,
    AnswerLinks,
    AnswerToken,
    Refusal,
    TokenError,
    answer_deadline,
    bounded_reason,
    check_respond_by,
    invalid_answer,
    joined_outcome,
    kind_of,
    late_answer,
    link_update_id,
    parse_sms_reply,
    phone_key,
    sign_token,
    sms_prompt,
    snooze_scope,
    snooze_scopes,
    verify_token,
)
from herald.models import (
    Action,
    AgentNotification,
    Answer,
    AnswerChannel,
    AnswerRequest,
    NotificationOutcome,
    NotificationStatus,
    Priority,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SECRET = b"answer-secret-for-tests"
APPROVE, DENY = Action(id="approve", label="Approve"), Action(id="deny", label="Deny")


def question(**changes: object) -> AgentNotification:
    values: dict[str, object] = {
        "notification_id": "q1",
        "agent_id": "deploy-agent",
        "user_id": "ada",
        "title": "Deploy the fix to production?",
        "actions": [APPROVE, DENY],
        "respond_by": NOW + timedelta(hours=1),
        "created_at": NOW,
    }
    values.update(changes)
    return AgentNotification.model_validate(values)


def outcome(**changes: object) -> NotificationOutcome:
    values: dict[str, object] = {
        "notification_id": "q1",
        "workflow_id": "notification/q1",
        "agent_id": "deploy-agent",
        "user_id": "ada",
        "priority": Priority.medium,
    }
    values.update(changes)
    return NotificationOutcome.model_validate(values)


def field_errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}


# --- the model -----------------------------------------------------------------------------------------------


def test_a_question_carries_up_to_five_unique_actions() -> None:
    n = question()
    assert n.asks and [a.id for a in n.actions] == ["approve", "deny"]
    with pytest.raises(ValidationError) as too_many:
        question(actions=[{"id": f"a{i}", "label": f"A {i}"} for i in range(6)], respond_by=None)
    assert "limit is 5" in field_errors(too_many.value)["actions"]
    with pytest.raises(ValidationError) as repeated:
        question(actions=[APPROVE, {"id": "approve", "label": "Yes"}], respond_by=None)
    assert "repeated: approve" in field_errors(repeated.value)["actions"]


def test_action_ids_are_short_identifiers_and_labels_are_required() -> None:
    with pytest.raises(ValidationError) as bad:
        Action.model_validate({"id": "no spaces", "label": "x"})
    assert "id" in field_errors(bad.value)
    with pytest.raises(ValidationError) as long:
        Action.model_validate({"id": "a" * 33, "label": "x"})
    assert "id" in field_errors(long.value)
    with pytest.raises(ValidationError) as empty:
        Action.model_validate({"id": "ok", "label": "   "})
    assert field_errors(empty.value)["label"].endswith("must not be empty")


def test_respond_by_needs_actions_and_a_time_zone() -> None:
    with pytest.raises(ValidationError) as no_actions:
        question(actions=[])
    assert "needs actions" in field_errors(no_actions.value)["respond_by"]
    with pytest.raises(ValidationError) as naive:
        question(respond_by=datetime(2026, 11, 21, 13, 0))
    assert "time zone" in field_errors(naive.value)["respond_by"]


def test_a_past_deadline_is_refused_where_a_question_enters_but_decodes_later() -> None:
    past = question(respond_by=NOW - timedelta(seconds=1))  # the model itself takes it: workflows decode it later
    with pytest.raises(ValueError, match="must be in the future"):
        check_respond_by(past, NOW)
    check_respond_by(question(), NOW)
    check_respond_by(question(respond_by=None), NOW)


def test_the_deadline_defaults_to_the_answer_window() -> None:
    assert answer_deadline(question()) == NOW + timedelta(hours=1)
    assert answer_deadline(question(respond_by=None), 60) == NOW + timedelta(seconds=60)


# --- who may answer what, and when ------------------------------------------------------------------------------


def request(action_id: str = "approve", user_id: str = "ada") -> AnswerRequest:
    return AnswerRequest(action_id=action_id, user_id=user_id, channel=AnswerChannel.email)


def test_kinds_of_answers() -> None:
    n = question()
    assert kind_of("approve", n) is AnswerKind.answer
    assert kind_of("ack", n) is AnswerKind.ack
    assert kind_of("snooze", n) is AnswerKind.snooze
    assert kind_of("maybe", n) is None
    # Listed as a button, snooze still means snooze, never an answer.
    assert kind_of("snooze", question(actions=[APPROVE, Action(id="snooze", label="Later")])) is AnswerKind.snooze


def test_invalid_answers_say_why() -> None:
    n, deadline = question(), NOW + timedelta(hours=1)
    assert invalid_answer(request(), n, NOW, deadline) is None
    assert invalid_answer(request("maybe"), n, NOW, deadline) == Refusal(
        "UnknownAction", "unknown action maybe: this notification offers approve, deny, ack, snooze"
    )
    assert invalid_answer(request(user_id="bob"), n, NOW, deadline) == Refusal(
        "NotRecipient", "only the notified user may answer this notification"
    )
    assert invalid_answer(request(), n, deadline, deadline) == Refusal(
        "TooLate", "too late: answers were taken until 2026-11-21T13:00:00+00:00"
    )
    # Acks are about escalation, which the deadline does not end.
    assert invalid_answer(request("ack"), n, deadline, deadline) is None


def test_the_first_valid_answer_wins() -> None:
    n = question()
    first = Answer(action_id="deny", user_id="ada", channel=AnswerChannel.sms, answered_at=NOW)
    assert late_answer(request(), n, outcome()) is None
    assert late_answer(request(), n, outcome(answer=first)) == Refusal(
        "AlreadyAnswered", "already answered: deny via sms at 2026-11-21T12:00:00+00:00"
    )
    assert late_answer(request("ack"), n, outcome(answer=first)) is None
    ack_again = late_answer(request("snooze"), n, outcome(acknowledged=first))
    assert ack_again is not None and ack_again.type == "AlreadyAcknowledged"


def test_snooze_scopes() -> None:
    assert snooze_scope("checkout-errors", "agent-1") == "rule:checkout-errors"
    assert snooze_scope(None, "agent-1") == "agent:agent-1"
    assert snooze_scopes("checkout-errors", "agent-1") == ["rule:checkout-errors", "agent:agent-1"]
    assert snooze_scopes(None, "agent-1") == ["agent:agent-1"]


# --- signed links ------------------------------------------------------------------------------------------------


def token(**changes: object) -> AnswerToken:
    values: dict[str, object] = {
        "notification_id": "q1",
        "action_id": "approve",
        "expires_at": int((NOW + timedelta(hours=1)).timestamp()),
        "nonce": "n1",
        "channel": AnswerChannel.email,
    }
    values.update(changes)
    return AnswerToken(**values)  # type: ignore[arg-type]


def test_a_signed_token_verifies_and_round_trips() -> None:
    raw = sign_token(SECRET, token())
    assert verify_token(SECRET, raw, NOW) == token()
    assert verify_token(SECRET, sign_token(SECRET, token(action_id=None)), NOW).action_id is None


def test_forged_tokens_are_refused() -> None:
    raw = sign_token(SECRET, token())
    with pytest.raises(TokenError) as other_key:
        verify_token(b"another-secret", raw, NOW)
    assert other_key.value.code == "forged"
    payload, mac = raw.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["a"] = "deny"  # the holder changes the action
    altered = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError) as tampered:
        verify_token(SECRET, f"{altered}.{mac}", NOW)
    assert tampered.value.code == "forged"
    for junk in ("", "abc", "a.b.c", "x" * 600, "!!!.???"):
        with pytest.raises(TokenError):
            verify_token(SECRET, junk, NOW)


def test_expired_tokens_are_refused() -> None:
    raw = sign_token(SECRET, token())
    with pytest.raises(TokenError) as expired:
        verify_token(SECRET, raw, NOW + timedelta(hours=1))
    assert expired.value.code == "expired"


def test_tokens_hold_no_personal_data() -> None:
    links = AnswerLinks(SECRET, "https://herald.example.com/")
    n = question(user_id="ada@example.com", body="secret plans")
    url = links.action_urls(n)["approve"]
    assert url.startswith("https://herald.example.com/v1/answers/")
    payload = url.rsplit("/", 1)[1].split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert set(json.loads(decoded)) == {"v", "n", "a", "e", "j", "c"}
    assert "ada" not in decoded and "Deploy" not in decoded and "secret" not in decoded


def test_each_link_is_distinct_and_expires_with_the_question() -> None:
    links = AnswerLinks(SECRET, "https://h.example", window_seconds=60)
    n = question()
    first, second = links.action_urls(n), links.action_urls(n)
    assert first["approve"] != second["approve"]  # a fresh nonce each time: each link is single-use on its own
    claims = verify_token(SECRET, first["deny"].rsplit("/", 1)[1], NOW)
    assert (claims.action_id, claims.expires_at) == ("deny", int((NOW + timedelta(hours=1)).timestamp()))
    respond_url = links.respond_url(question(respond_by=None), AnswerChannel.webhook)
    open_ended = verify_token(SECRET, respond_url.rsplit("/", 1)[1], NOW)
    assert open_ended.action_id is None and open_ended.channel is AnswerChannel.webhook
    assert open_ended.expires_at == int((NOW + timedelta(seconds=60)).timestamp())


def test_a_links_answer_has_one_update_id_that_shows_no_nonce() -> None:
    links = AnswerLinks(SECRET, "https://h.example")
    first, second = (
        verify_token(SECRET, links.respond_url(question(), AnswerChannel.webhook).rsplit("/", 1)[1], NOW)
        for _ in range(2)
    )
    assert link_update_id(first) == link_update_id(first)  # the link's retries are one answer
    assert link_update_id(first) != link_update_id(second)  # another link is another answer
    assert link_update_id(first).startswith("link/") and first.nonce not in link_update_id(first)


def test_refusal_reasons_are_bounded() -> None:
    assert bounded_reason("unknown action x") == "unknown action x"
    cut = bounded_reason("y" * 10_000)
    assert len(cut) == REFUSED_REASON_MAX_CHARS and cut.endswith("…")


# --- SMS -----------------------------------------------------------------------------------------------------------


def test_the_sms_prompt_numbers_the_actions() -> None:
    assert sms_prompt([APPROVE, DENY]) == "Reply 1 for Approve, 2 for Deny"
    assert sms_prompt([]) == ""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1", "approve"),
        (" 2 ", "deny"),
        ("2.", "deny"),
        ("3", None),
        ("0", None),
        ("Approve", "approve"),
        ("DENY!", "deny"),
        ("ack", "ack"),
        ("OK", "ack"),
        ("Snooze", "snooze"),
        ("maybe later today", None),
        ("", None),
    ],
)
def test_sms_replies(body: str, expected: str | None) -> None:
    assert parse_sms_reply(body, ["approve", "deny"]) == expected


def test_phones_are_found_by_hash() -> None:
    assert phone_key("+14155550100") == phone_key(" +14155550100 ")
    assert phone_key("+14155550100") != phone_key("+14155550101")
    assert "4155550100" not in phone_key("+14155550100")


def test_a_duplicate_question_takes_the_ending_of_the_one_it_joined() -> None:
    def outcome(notification_id: str, **fields: object) -> NotificationOutcome:
        return NotificationOutcome.model_validate(
            {
                "notification_id": notification_id,
                "workflow_id": f"notification/{notification_id}",
                "agent_id": "a",
                "user_id": "u",
                "priority": Priority.high,
                **fields,
            }
        )

    answer = Answer(action_id="approve", user_id="u", channel=AnswerChannel.sms, answered_at=NOW)
    duplicate = outcome("dup", duplicate_of="orig")
    original = outcome("orig", status=NotificationStatus.answered, answer=answer, ops_alert="theirs")
    joined = joined_outcome(duplicate, original)
    assert (joined.status, joined.answer, joined.notification_id) == (NotificationStatus.answered, answer, "dup")
    assert joined.ops_alert is None and joined.duplicate_of == "orig"  # the original's alert stays its own
    no_channel = joined_outcome(duplicate, outcome("orig", status=NotificationStatus.no_channel))
    assert no_channel.status is NotificationStatus.no_channel and no_channel.answer is None
    # The original still open at the duplicate's deadline (or unknown): the duplicate has expired.
    assert joined_outcome(duplicate, None).status is NotificationStatus.expired
    assert joined_outcome(duplicate, outcome("orig")).status is NotificationStatus.expired
