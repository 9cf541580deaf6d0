"""Hypothesis over what people and agents send: notifications, preferences, trigger rules, digest items.

Invalid input is refused with a message naming the field, and never quoting the value; valid input always
routes, renders and digests without an exception, and (a few examples, on the live stack) runs through the
real workflow to a final outcome.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from herald.domain.digest import digest_notification
from herald.domain.routing import route
from herald.domain.rules import RuleProblem, compile_rule
from herald.domain.validation import describe
from herald.models import (
    BODY_MAX_BYTES,
    TITLE_MAX_CHARS,
    AgentNotification,
    ChannelName,
    DigestItem,
    Preferences,
    Priority,
    TriggerRule,
)
from tests.hostile.conftest import LiveStack

NOT_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # lone surrogates are not text: the API refuses them
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=NOT_SURROGATES), max_size=60)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4))
# Anything at all where a field goes: right types, wrong types, junk.
ANYTHING = JSON | st.sampled_from(["push", "email", "sms", "webhook", "low", "critical", "", " ", "ada", "22:00-07:00"])
IDENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}", fullmatch=True)


def assert_refusal_is_clear(exc: ValidationError, fields: set[str], document: dict[str, Any]) -> None:
    """Each problem names a field the document holds (or the model knows) and does not echo the value."""
    problems = describe(exc.errors())
    assert problems
    for problem in problems:
        assert problem.field, problem
        assert problem.field.split(".")[0] in fields | set(document), problem
        assert problem.message.strip(), problem
    # The same problems with every input blanked out: what a message says whatever the input was. A value found
    # only there is the message's own wording (Hypothesis mines string literals from the code), not an echo.
    own_words = " ".join(p.message for p in describe([{**e, "input": None, "ctx": e.get("ctx")} for e in exc.errors()]))
    for value in _strings(document):
        if len(value) >= 12 and not value.isspace() and value not in own_words:
            assert all(value not in problem.message for problem in problems), "the message quotes the input"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


NOTIFICATION_FIELDS = set(AgentNotification.model_fields)


@given(
    st.fixed_dictionaries(
        {"agent_id": IDENT | ANYTHING, "user_id": IDENT | ANYTHING, "title": TEXT | ANYTHING},
        optional={name: ANYTHING for name in ("body", "priority", "channels", "metadata", "dedup_key", "junk")},
    )
)
@FAST
def test_a_notification_is_valid_or_refused_naming_the_field(document: dict[str, Any]) -> None:
    try:
        notification = AgentNotification.model_validate(document)
    except ValidationError as exc:
        assert_refusal_is_clear(exc, NOTIFICATION_FIELDS, document)
        return
    # Valid: it routes under any preferences and fits every limit the channels rely on.
    assert 0 < len(notification.title) <= TITLE_MAX_CHARS
    assert len(notification.body.encode()) <= BODY_MAX_BYTES
    route(notification, Preferences(), datetime.now(UTC))


CHANNEL_SETTING = st.booleans() | st.fixed_dictionaries(
    {}, optional={"enabled": st.booleans(), "min_priority": st.sampled_from(list(Priority))}
)
LEVEL = st.fixed_dictionaries(
    {}, optional={**{c.value: CHANNEL_SETTING for c in ChannelName}, "min_priority": st.sampled_from(list(Priority))}
)
WINDOWS = st.from_regex(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]", fullmatch=True).filter(
    lambda window: window[:5] != window[6:]  # a window must end at another time than it starts
)
VALID_PREFERENCES = st.fixed_dictionaries(
    {},
    optional={
        "default": LEVEL,
        "agents": st.dictionaries(IDENT, LEVEL, max_size=3),
        "time_zone": st.sampled_from(
            ["UTC", "Europe/Berlin", "America/St_Johns", "Pacific/Kiritimati", "Asia/Kolkata"]
        ),
        "quiet_hours": st.fixed_dictionaries(
            {"window": WINDOWS},
            optional={"during": st.sampled_from(["hold", "digest"])},
        ),
        "digest": st.fixed_dictionaries(
            {"cadence": st.sampled_from(["off", "hourly", "daily"])},
            optional={"hour": st.integers(0, 23), "priorities": st.sampled_from(["low", "low_and_medium"])},
        ),
    },
)
PREFERENCE_FIELDS = set(Preferences.model_fields)


@given(
    document=VALID_PREFERENCES | st.dictionaries(st.sampled_from([*PREFERENCE_FIELDS, "junk"]), ANYTHING, max_size=4)
)
@FAST
def test_preferences_are_valid_or_refused_naming_the_field(document: dict[str, Any]) -> None:
    try:
        preferences = Preferences.model_validate(document)
    except ValidationError as exc:
        assert_refusal_is_clear(exc, PREFERENCE_FIELDS, document)
        return
    assert Preferences.model_validate(preferences.model_dump(exclude_none=True)) == preferences


@given(
    document=VALID_PREFERENCES,
    priority=st.sampled_from(list(Priority)),
    channels=st.lists(st.sampled_from(list(ChannelName)), min_size=1, max_size=4),
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_valid_preferences_route_any_notification(
    document: dict[str, Any], priority: Priority, channels: list[ChannelName], now: datetime
) -> None:
    """Quiet hours across DST changes and odd offsets, digests, floors: a decision, never an exception."""
    preferences = Preferences.model_validate(document)
    notification = AgentNotification(agent_id="a", user_id="u", title="t", priority=priority, channels=channels)
    routed = route(notification, preferences, now)
    if routed.hold_until is not None:
        assert routed.hold_until > now and priority is not Priority.critical
    if priority is Priority.critical:
        assert routed.hold_until is None and not routed.digest


TEMPLATE = TEXT | st.sampled_from(
    ["{{ x }}", "{{ x + 1 }}", "{% for i in range(3) %}{{ i }}{% endfor %}", "{{", "{{ x.__class__ }}", "{% include 'a' %}",
     "{{ metrics }}", "{{ ''.join(['a'] * 10000) }}", "{{ x | upper }}", "{{ 1 / 0 }}", "{{ rule }}-{{ agent_id }}"]
)  # fmt: skip
METRICS = st.dictionaries(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    max_size=5,
)


@given(title=TEMPLATE, body=TEMPLATE, dedup_key=st.none() | TEMPLATE, metrics=METRICS)
@FAST
def test_rule_templates_compile_or_name_their_field_and_render_any_event(
    title: str, body: str, dedup_key: str | None, metrics: dict[str, Any]
) -> None:
    try:
        rule = TriggerRule(
            name="r", condition="true", user_ids=["ada"], title=title or "t", body=body, dedup_key=dedup_key
        )
    except ValidationError as exc:
        assert_refusal_is_clear(exc, set(TriggerRule.model_fields), {"title": title, "body": body})
        return
    try:
        compiled = compile_rule(rule)
    except RuleProblem as problem:
        assert problem.field in ("title", "body", "dedup_key") and problem.message
        return
    firing = compiled.firing("support-agent", metrics)
    # Whatever the template made of the metrics, the notification it becomes is valid.
    AgentNotification(
        agent_id="support-agent", user_id="ada", title=firing.title, body=firing.body, dedup_key=firing.dedup_key,
        metadata=firing.metadata,
    )  # fmt: skip


ITEMS = st.lists(
    st.builds(
        DigestItem,
        notification_id=IDENT,
        agent_id=IDENT,
        title=TEXT.filter(str.strip) | st.builds(lambda c, n: c * n, st.sampled_from("a<é🚨"), st.integers(190, 200)),
        body=TEXT | st.builds(lambda c, n: c * n, st.sampled_from("a\n<é🚨"), st.integers(1000, 2500)),
        priority=st.sampled_from(list(Priority)),
        created_at=st.datetimes(timezones=st.just(UTC)),
    ),
    min_size=1,
    max_size=60,
)


@given(items=ITEMS)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_digest_items_make_one_valid_notification(items: list[DigestItem]) -> None:
    try:
        for item in items:
            item.title.encode()
            item.body.encode()
    except UnicodeEncodeError:
        return  # not text: the API refuses these before they could reach a digest
    digest = digest_notification("ada", "digest-ada-1", items, datetime.now(UTC))
    assert len(digest.body.encode()) <= BODY_MAX_BYTES
    assert digest.metadata == {"digest_of": len(items)}


# --- valid input through the real workflow, on the live stack ---------------------------------------------

FINAL = {"delivered", "partially_delivered", "failed", "no_channel", "digested", "suppressed_duplicate"}


@pytest.fixture(scope="module")
async def no_workflow_failed(stack: LiveStack) -> AsyncIterator[None]:
    """Checked after the last test that uses it, whatever order the tests ran in: nothing the stack ran failed.

    It used to be a test of its own that meant something only when it happened to run after the property."""
    yield
    assert await stack.failed_workflows() == []


@pytest.mark.usefixtures("no_workflow_failed")
@given(
    preferences=VALID_PREFERENCES,
    title=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=NOT_SURROGATES), min_size=1, max_size=80
    ).filter(str.strip),
    body=TEXT,
    priority=st.sampled_from([p.value for p in Priority if p is not Priority.critical]),
    channels=st.lists(st.sampled_from(["push", "email", "sms", "webhook"]), min_size=1, max_size=4, unique=True),
    metadata=st.dictionaries(TEXT, JSON, max_size=3),
)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_valid_input_never_crashes_a_workflow(
    http: httpx.Client,
    stack: LiveStack,
    preferences: dict[str, Any],
    title: str,
    body: str,
    priority: str,
    channels: list[str],
    metadata: dict[str, Any],
) -> None:
    user = f"prop-{uuid.uuid4().hex[:8]}"
    admin = stack.headers("admin")
    # No webhook URL: this stack refuses loopback receivers, and nothing here may leave the machine.
    contact = {"email": "ada@example.com", "phone": "+14155550100"}
    assert http.put(f"/v1/users/{user}/contact", json=contact, headers=admin).status_code == 200
    assert http.put(f"/v1/users/{user}/preferences", json=preferences, headers=admin).status_code == 200, preferences
    note = {
        "agent_id": "support-agent",
        "user_id": user,
        "title": title,
        "body": body,
        "priority": priority,
        "channels": channels,
        "metadata": metadata,
    }
    sent = http.post("/v1/notifications", json=note, headers=stack.headers("support-agent"))
    if sent.status_code == 422:  # a valid-looking title the model refuses (say, over 200 once stripped)
        return
    assert sent.status_code == 202, sent.text
    status_url = sent.json()["status_url"]
    deadline = time.monotonic() + 60
    while True:
        view = http.get(status_url, headers=admin).json()
        if view["status"] in FINAL or view.get("held_until"):
            break
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
