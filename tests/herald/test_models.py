"""Validation of the models agents and users send: bad input is refused with a message that names the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from herald.models import (
    BODY_MAX_BYTES,
    METADATA_MAX_BYTES,
    TITLE_MAX_CHARS,
    AgentNotification,
    ChannelName,
    ChannelPreference,
    Contact,
    DigestPriorities,
    PreferenceQuery,
    Preferences,
    Priority,
    QuietHoursAction,
    parse_quiet_window,
)

VALID: dict[str, Any] = {"agent_id": "batch-agent", "user_id": "alice", "title": "Job finished"}


def notification(**overrides: Any) -> AgentNotification:
    return AgentNotification.model_validate({**VALID, **overrides})


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, Any]:
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


# --- AgentNotification: valid input --------------------------------------------------------------


def test_minimal_notification_gets_defaults() -> None:
    n = notification()
    assert n.priority is Priority.medium
    assert n.channels == [ChannelName.push, ChannelName.email]
    assert n.body == ""
    assert n.metadata == {}
    assert n.dedup_key is None
    assert len(n.notification_id) == 32
    assert n.created_at.tzinfo is not None
    assert n.workflow_id == f"notification/{n.notification_id}"


def test_generated_notification_ids_are_unique() -> None:
    assert notification().notification_id != notification().notification_id


def test_title_of_exactly_200_chars_is_accepted() -> None:
    title = "t" * TITLE_MAX_CHARS
    assert notification(title=title).title == title


def test_title_is_stripped_before_the_length_check() -> None:
    assert notification(title="  " + "t" * TITLE_MAX_CHARS + "\n").title == "t" * TITLE_MAX_CHARS


def test_body_of_exactly_10240_bytes_is_accepted() -> None:
    body = "b" * BODY_MAX_BYTES
    assert notification(body=body).body == body


def test_multibyte_body_of_exactly_10240_bytes_is_accepted() -> None:
    body = "é" * (BODY_MAX_BYTES // 2)  # two bytes each in UTF-8
    assert len(body.encode()) == BODY_MAX_BYTES
    assert notification(body=body).body == body


def test_duplicate_channels_are_dropped_keeping_first_order() -> None:
    n = notification(channels=["email", "push", "email", "sms", "push"])
    assert n.channels == [ChannelName.email, ChannelName.push, ChannelName.sms]


def test_every_channel_and_priority_is_accepted() -> None:
    n = notification(channels=[c.value for c in ChannelName], priority="critical")
    assert n.channels == list(ChannelName)
    assert n.priority is Priority.critical


@pytest.mark.parametrize(
    "value", ["a", "A", "9", "agent.v2", "agent_1", "ns:agent", "bot@example.com", "a-b", "a" * 128]
)
def test_valid_identifiers_are_accepted(value: str) -> None:
    n = notification(notification_id=value, agent_id=value, user_id=value)
    assert (n.notification_id, n.agent_id, n.user_id) == (value, value, value)


def test_metadata_of_exactly_16_kb_is_accepted() -> None:
    # {"k":"xxx..."} is 8 bytes of JSON around the value
    metadata = {"k": "x" * (METADATA_MAX_BYTES - 8)}
    assert notification(metadata=metadata).metadata == metadata


def test_naive_created_at_is_taken_as_utc() -> None:
    n = notification(created_at="2024-05-01T12:00:00")
    assert n.created_at.utcoffset() is not None
    assert n.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# --- AgentNotification: invalid input ------------------------------------------------------------


@pytest.mark.parametrize("title", ["", " ", "   \t\n  "])
def test_empty_or_whitespace_title_is_rejected(title: str) -> None:
    with pytest.raises(ValidationError) as exc:
        notification(title=title)
    error = only_error(exc)
    assert error["loc"] == ("title",)
    assert "must not be empty" in error["msg"]


def test_title_over_200_chars_is_rejected_with_its_length() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(title="t" * (TITLE_MAX_CHARS + 1))
    error = only_error(exc)
    assert error["loc"] == ("title",)
    assert "201 characters" in error["msg"]
    assert "200" in error["msg"]


def test_body_over_10_kb_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(body="b" * (BODY_MAX_BYTES + 1))
    error = only_error(exc)
    assert error["loc"] == ("body",)
    assert "10241 bytes" in error["msg"]
    assert "10 KB" in error["msg"]


def test_body_limit_counts_utf8_bytes_not_characters() -> None:
    body = "é" * (BODY_MAX_BYTES // 2 + 1)  # 5121 characters, 10242 bytes
    with pytest.raises(ValidationError) as exc:
        notification(body=body)
    error = only_error(exc)
    assert error["loc"] == ("body",)
    assert "10242 bytes" in error["msg"]


def test_metadata_over_16_kb_as_json_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(metadata={"k": "x" * (METADATA_MAX_BYTES - 7)})
    error = only_error(exc)
    assert error["loc"] == ("metadata",)
    assert "16 KB" in error["msg"]
    assert f"{METADATA_MAX_BYTES + 1} bytes" in error["msg"]


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes"])
def test_non_json_serializable_metadata_is_rejected(value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        notification(metadata={"k": value})
    error = only_error(exc)
    assert error["loc"] == ("metadata",)
    assert "JSON-serializable" in error["msg"]


def test_unknown_channel_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(channels=["push", "fax"])
    error = only_error(exc)
    assert error["loc"] == ("channels", 1)
    assert "fax" in str(error["input"])


def test_unknown_priority_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(priority="urgent")
    error = only_error(exc)
    assert error["loc"] == ("priority",)
    assert "critical" in error["msg"]


def test_empty_channels_list_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(channels=[])
    error = only_error(exc)
    assert error["loc"] == ("channels",)
    assert "at least one channel" in error["msg"]


@pytest.mark.parametrize("field", ["notification_id", "agent_id", "user_id"])
@pytest.mark.parametrize(
    "value",
    ["", "a/b", "../etc", "-leading-dash", ".hidden", "has space", "tab\there", "a" * 129, "ü", "abc\n", "\nabc"],
)
def test_bad_identifiers_are_rejected(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        notification(**{field: value})
    error = only_error(exc)
    assert error["loc"] == (field,)
    assert "letters, digits" in error["msg"]


@pytest.mark.parametrize("field", ["agent_id", "title"])
def test_required_fields_are_named_when_missing(field: str) -> None:
    data = {k: v for k, v in VALID.items() if k != field}
    with pytest.raises(ValidationError) as exc:
        AgentNotification.model_validate(data)
    error = only_error(exc)
    assert error["loc"] == (field,)
    assert error["type"] == "missing"


def test_a_group_notification_names_no_escalation_policy() -> None:
    """Fan-out and escalation each address people their own way; a policy's step names a group as `group:<name>`."""
    data = {"agent_id": "batch-agent", "title": "Disk full", "group": "sre", "escalation_policy": "payments"}
    with pytest.raises(ValidationError) as exc:
        AgentNotification.model_validate(data)
    error = only_error(exc)
    assert error["loc"] == ("escalation_policy",) and "group:<name>" in error["msg"]


@pytest.mark.parametrize("recipient", [{}, {"user_id": "alice", "group": "sre"}])
def test_a_notification_names_exactly_one_of_user_id_or_group(recipient: dict[str, str]) -> None:
    data = {"agent_id": "batch-agent", "title": "Job finished", **recipient}
    with pytest.raises(ValidationError) as exc:
        AgentNotification.model_validate(data)
    error = only_error(exc)
    assert error["loc"] == ("group",) and "exactly one of user_id or group" in error["msg"]
    assert notification(user_id=None, group="sre").recipient == "group:sre"
    assert notification().recipient == "alice"


def test_a_quorum_needs_a_group_and_one_of_the_questions_actions() -> None:
    actions = [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}]
    to_group = {"user_id": None, "group": "sre", "actions": actions}
    assert notification(**to_group, quorum={"action": "approve", "count": 2}).quorum.count == 2  # type: ignore[union-attr]
    assert notification(**to_group).quorum == "first"
    for bad, says in [
        ({"actions": actions, "quorum": {"action": "approve", "count": 2}}, "needs a group"),
        ({**to_group, "quorum": {"action": "restart", "count": 2}}, "one of the question's actions"),
        ({**to_group, "quorum": {"action": "approve", "count": 0}}, "greater than or equal to 1"),
        ({**to_group, "quorum": "all"}, ""),
    ]:
        with pytest.raises(ValidationError) as exc:
            notification(**bad)
        assert all(e["loc"][0] == "quorum" for e in exc.value.errors()), exc.value.errors()
        assert says in str(exc.value)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(colour="red")
    error = only_error(exc)
    assert error["loc"] == ("colour",)
    assert error["type"] == "extra_forbidden"


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_dedup_key_length_is_bounded(key: str) -> None:
    with pytest.raises(ValidationError) as exc:
        notification(dedup_key=key)
    error = only_error(exc)
    assert error["loc"] == ("dedup_key",)


def test_dedup_key_of_200_chars_is_accepted() -> None:
    assert notification(dedup_key="k" * 200).dedup_key == "k" * 200


def test_several_bad_fields_are_all_reported() -> None:
    with pytest.raises(ValidationError) as exc:
        notification(title=" ", user_id="a/b", channels=[])
    assert {e["loc"][0] for e in exc.value.errors()} == {"title", "user_id", "channels"}


# --- Contact -------------------------------------------------------------------------------------


def test_contact_accepts_valid_values() -> None:
    contact = Contact(email="alice@example.com", phone="+14155550100", webhook_url="https://hooks.example.com/h?x=1")
    assert contact.email == "alice@example.com"
    assert contact.phone == "+14155550100"
    assert contact.webhook_url == "https://hooks.example.com/h?x=1"
    assert Contact(webhook_url="http://127.0.0.1:8080").webhook_url == "http://127.0.0.1:8080"


def test_contact_fields_are_optional() -> None:
    assert Contact().model_dump(exclude_none=True) == {}


@pytest.mark.parametrize(
    "email",
    [
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "al ice@example.com",
        "a@b@example.com",
        "alice@example.com\n",
    ],
)
def test_contact_rejects_bad_email(email: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Contact(email=email)
    error = only_error(exc)
    assert error["loc"] == ("email",)
    assert "email address" in error["msg"]


def test_contact_rejects_overlong_email() -> None:
    with pytest.raises(ValidationError) as exc:
        Contact(email="a" * 250 + "@example.com")
    assert only_error(exc)["loc"] == ("email",)


@pytest.mark.parametrize(
    "phone", ["14155550100", "+04155550100", "+1 415 555 0100", "+1-415-555-0100", "+12345", "+1234567890123456", ""]
)
def test_contact_rejects_non_e164_phone(phone: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Contact(phone=phone)
    error = only_error(exc)
    assert error["loc"] == ("phone",)
    assert "E.164" in error["msg"]


def test_contact_rejects_phone_numbers_no_country_uses() -> None:
    """E.164 in form, but +1 999 is no North American area code: phonenumbers says it can't be dialled."""
    with pytest.raises(ValidationError) as exc:
        Contact(phone="+19995550100")
    error = only_error(exc)
    assert error["loc"] == ("phone",)
    assert "not a valid phone number" in error["msg"]


def test_contact_rejects_phone_with_trailing_newline() -> None:
    with pytest.raises(ValidationError) as exc:
        Contact(phone="+14155550100\n")
    assert only_error(exc)["loc"] == ("phone",)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/h", "example.com/h", "https://", "https:///path", "https://exa mple.com", "javascript:x"]
)
def test_contact_rejects_non_http_webhook_url(url: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Contact(webhook_url=url)
    error = only_error(exc)
    assert error["loc"] == ("webhook_url",)
    assert "http://" in error["msg"]


def test_contact_rejects_webhook_url_with_trailing_newline() -> None:
    with pytest.raises(ValidationError) as exc:
        Contact(webhook_url="https://hooks.example.com/h\n")
    assert only_error(exc)["loc"] == ("webhook_url",)


def test_contact_rejects_unknown_field() -> None:
    with pytest.raises(ValidationError) as exc:
        Contact.model_validate({"pager": "123"})
    assert only_error(exc)["loc"] == ("pager",)


# --- Preferences ---------------------------------------------------------------------------------


def test_seed_preferences_parse() -> None:
    prefs = Preferences.model_validate(
        {"default": {"push": True, "email": True, "sms": False}, "agents": {"batch-agent": {"email": False}}}
    )
    assert prefs.default.get(ChannelName.push) is True
    assert prefs.default.get(ChannelName.sms) is False
    assert prefs.default.get(ChannelName.webhook) is None
    assert prefs.agents["batch-agent"].get(ChannelName.email) is False
    assert prefs.agents["batch-agent"].get(ChannelName.push) is None


def test_empty_preferences_set_nothing() -> None:
    prefs = Preferences()
    assert all(prefs.default.get(c) is None for c in ChannelName)
    assert prefs.agents == {}


def test_unknown_channel_in_default_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate({"default": {"push": True, "fax": True}})
    error = only_error(exc)
    assert error["loc"] == ("default", "fax")
    assert error["type"] == "extra_forbidden"


def test_unknown_channel_in_agent_entry_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate({"agents": {"batch-agent": {"pager": False}}})
    error = only_error(exc)
    assert error["loc"] == ("agents", "batch-agent", "pager")


def test_unknown_top_level_preference_key_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate({"defaults": {"push": True}})
    assert only_error(exc)["loc"] == ("defaults",)


def test_bad_agent_id_in_preferences_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate({"agents": {"a/b": {"email": False}}})
    error = only_error(exc)
    assert error["loc"][0] == "agents"
    assert "letters, digits" in error["msg"]


def test_non_boolean_switch_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate({"default": {"push": "sometimes"}})
    assert only_error(exc)["loc"] == ("default", "push")


# --- Preferences: minimum priorities, time zone, quiet hours, digest ----------------------------

FULL_PREFERENCES: dict[str, Any] = {
    "time_zone": "Europe/Berlin",
    "default": {
        "push": {"min_priority": "high"},
        "email": True,
        "sms": {"enabled": True, "min_priority": "critical"},
        "min_priority": "low",
    },
    "agents": {"coding-agent": {"push": {"enabled": True, "min_priority": "low"}, "webhook": False}},
    "quiet_hours": {"window": "22:00-07:00", "during": "hold"},
    "digest": {"cadence": "daily", "hour": 7, "priorities": "low_and_medium"},
}


def test_full_preferences_parse_and_dump_as_written() -> None:
    prefs = Preferences.model_validate(FULL_PREFERENCES)
    assert prefs.model_dump(mode="json", exclude_none=True) == FULL_PREFERENCES
    assert prefs.default.setting(ChannelName.sms) == ChannelPreference(enabled=True, min_priority=Priority.critical)
    assert prefs.default.get(ChannelName.push) is None
    assert prefs.agents["coding-agent"].get(ChannelName.webhook) is False
    assert prefs.zone.key == "Europe/Berlin"
    assert prefs.quiet_hours is not None and prefs.quiet_hours.action is QuietHoursAction.hold
    assert prefs.digest is not None and prefs.digest.local_hour == 7


def test_bools_stay_bools_and_objects_stay_objects() -> None:
    doc = {"default": {"push": True, "email": {"enabled": False}}}
    assert Preferences.model_validate(doc).model_dump(mode="json", exclude_none=True) == {**doc, "agents": {}}


def test_unset_new_fields_take_their_defaults_and_stay_unset() -> None:
    prefs = Preferences.model_validate({"quiet_hours": {"window": "13:00-14:00"}, "digest": {"cadence": "daily"}})
    assert prefs.zone.key == "UTC" and prefs.time_zone is None
    assert prefs.quiet_hours is not None and prefs.quiet_hours.action is QuietHoursAction.hold
    assert prefs.digest is not None and prefs.digest.local_hour == 8 and prefs.digest.collects is DigestPriorities.low
    assert prefs.model_dump(mode="json", exclude_none=True) == {
        "default": {},
        "agents": {},
        "quiet_hours": {"window": "13:00-14:00"},
        "digest": {"cadence": "daily"},
    }


def test_digest_priorities_include() -> None:
    assert [DigestPriorities.low.includes(p) for p in Priority] == [True, False, False, False]
    assert [DigestPriorities.low_and_medium.includes(p) for p in Priority] == [True, True, False, False]


@pytest.mark.parametrize("window", ["22:00-07:00", "00:00-23:59", "13:00-14:00", "23:59-00:00", "07:30-07:31"])
def test_good_quiet_windows(window: str) -> None:
    start, end = parse_quiet_window(window)
    assert f"{start:%H:%M}-{end:%H:%M}" == window
    assert Preferences.model_validate({"quiet_hours": {"window": window}}).quiet_hours is not None


@pytest.mark.parametrize(
    ("document", "loc", "says"),
    [
        ({"default": {"sms": {"min_priority": "urgent"}}}, ("default", "sms", "min_priority"), "'critical'"),
        ({"agents": {"a": {"push": {"min_priority": "x"}}}}, ("agents", "a", "push", "min_priority"), "'low'"),
        ({"default": {"min_priority": "urgent"}}, ("default", "min_priority"), "'medium'"),
        ({"agents": {"a": {"min_priority": "none"}}}, ("agents", "a", "min_priority"), "'high'"),
        ({"default": {"sms": {"enable": True}}}, ("default", "sms", "enable"), "Extra inputs"),
        ({"default": {"sms": {"enabled": "maybe"}}}, ("default", "sms", "enabled"), "boolean"),
        ({"default": {"sms": 1}}, ("default", "sms"), "true, false or an object"),
        ({"default": {"fax": {"enabled": True}}}, ("default", "fax"), "Extra inputs"),
        ({"time_zone": "Mars/Olympus_Mons"}, ("time_zone",), "IANA time zone"),
        ({"time_zone": "Europe/"}, ("time_zone",), "IANA time zone"),
        ({"time_zone": "../../etc/passwd"}, ("time_zone",), "IANA time zone"),
        ({"time_zone": "zone.tab"}, ("time_zone",), "IANA time zone"),
        ({"time_zone": ""}, ("time_zone",), "IANA time zone"),
        ({"quiet_hours": {"window": "22-07"}}, ("quiet_hours", "window"), "HH:MM-HH:MM"),
        ({"quiet_hours": {"window": "24:00-07:00"}}, ("quiet_hours", "window"), "HH:MM-HH:MM"),
        ({"quiet_hours": {"window": "22:00-07:60"}}, ("quiet_hours", "window"), "HH:MM-HH:MM"),
        ({"quiet_hours": {"window": "22:00-07:00\n"}}, ("quiet_hours", "window"), "HH:MM-HH:MM"),
        ({"quiet_hours": {"window": "7:00-22:00"}}, ("quiet_hours", "window"), "HH:MM-HH:MM"),
        ({"quiet_hours": {"window": "07:00-07:00"}}, ("quiet_hours", "window"), "another time"),
        ({"quiet_hours": {}}, ("quiet_hours", "window"), "required"),
        ({"quiet_hours": {"window": "22:00-07:00", "during": "drop"}}, ("quiet_hours", "during"), "'hold'"),
        ({"quiet_hours": {"window": "22:00-07:00", "zone": "UTC"}}, ("quiet_hours", "zone"), "Extra inputs"),
        ({"quiet_hours": "22:00-07:00"}, ("quiet_hours",), '"window": "22:00-07:00"'),
        ({"digest": {"cadence": "weekly"}}, ("digest", "cadence"), "'hourly'"),
        ({"digest": {"cadence": "daily", "hour": 24}}, ("digest", "hour"), "from 0 to 23"),
        ({"digest": {"cadence": "daily", "hour": -1}}, ("digest", "hour"), "from 0 to 23"),
        ({"digest": {"cadence": "daily", "hour": "eight"}}, ("digest", "hour"), "integer"),
        ({"digest": {"cadence": "daily", "priorities": "medium"}}, ("digest", "priorities"), "'low_and_medium'"),
        ({"digest": {"hour": 8}}, ("digest", "cadence"), "required"),
        ({"digest": {"cadence": "hourly", "every": 2}}, ("digest", "every"), "Extra inputs"),
        ({"digest": "hourly"}, ("digest",), '"cadence": "daily"'),
    ],
)
def test_bad_preferences_name_the_field(document: dict[str, Any], loc: tuple[str, ...], says: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate(document)
    error = only_error(exc)
    assert error["loc"] == loc
    assert says in error["msg"]


def test_time_zone_errors_do_not_echo_the_value() -> None:
    with pytest.raises(ValidationError) as exc:
        Preferences.model_validate({"time_zone": "Mars/Olympus_Mons"})
    assert "Olympus" not in only_error(exc)["msg"]


def test_preference_query_without_priority_still_decodes() -> None:
    query = PreferenceQuery.model_validate({"user_id": "alice", "agent_id": "a"})
    assert query.priority is None and query.channels is None


# --- as_utc, content_of ----------------------------------------------------------------------------


def test_as_utc_moves_an_offset_to_utc_and_takes_a_naive_time_as_utc() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from herald.models import as_utc

    paris = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(paris) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert as_utc(paris).utcoffset() == timedelta(0)
    assert as_utc(datetime(2024, 5, 1, 12, 0)) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_content_of_a_notification_and_of_its_digest_item_is_the_same() -> None:
    from herald.domain.digest import digest_item
    from herald.models.inbox import content_of

    n = notification(body="the nightly job took 3 hours", priority="low")
    content = content_of(n, n.user_id)
    assert (content.notification_id, content.agent_id, content.user_id) == (n.notification_id, "batch-agent", "alice")
    assert (content.title, content.body, content.priority, content.created_at) == (
        "Job finished",
        "the nightly job took 3 hours",
        Priority.low,
        n.created_at,
    )
    assert content_of(digest_item(n), "alice") == content


# --- activity boundaries: the bare values earlier workers sent and returned still read ----------------------


def test_one_field_models_read_the_bare_value_an_earlier_worker_recorded() -> None:
    from datetime import UTC, datetime

    from pydantic import TypeAdapter

    from herald.models import CallbackReceipt, DigestBoundary, OutcomeQuery

    # As Temporal's pydantic converter reads a payload: validate_json with the activity's annotation.
    boundary = TypeAdapter(DigestBoundary).validate_json(b'"2026-11-21T23:59:00Z"')
    assert boundary.at == datetime(2026, 11, 21, 23, 59, tzinfo=UTC)
    assert TypeAdapter(DigestBoundary).validate_json(b'{"at":null}').at is None
    assert TypeAdapter(OutcomeQuery).validate_json(b'"n-1"').notification_id == "n-1"
    assert TypeAdapter(OutcomeQuery).validate_json(b'{"notification_id":"n-2"}').notification_id == "n-2"
    assert (
        TypeAdapter(CallbackReceipt).validate_json(b'"outbox:callback/n-1.json"').receipt == "outbox:callback/n-1.json"
    )
    with pytest.raises(ValidationError):
        TypeAdapter(OutcomeQuery).validate_json(b"[1, 2]")


def test_delivery_failure_details_read_with_or_without_a_retry_after() -> None:
    from herald.models import DeliveryFailure

    assert DeliveryFailure.model_validate({"attempt": 3}) == DeliveryFailure(attempt=3)
    assert DeliveryFailure.model_validate({"attempt": 1, "retry_after": 2.5}).retry_after == 2.5
