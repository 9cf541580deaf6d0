"""One-click unsubscribe (RFC 8058) end to end: a real worker sends an email through SendGrid's fake or a real
SMTP server, and the link in its `List-Unsubscribe` header, posted to the real API as a mail client posts it,
turns that agent's email off in the person's preferences (the digest's link turns the digest off)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.domain.answers import AnswerToken, sign_token
from herald.domain.digest import DIGEST_AGENT
from herald.domain.unsubscribe import (
    UnsubscribeToken,
    sign_unsubscribe,
    unsubscribed,
    verify_unsubscribe,
    what_it_stops,
)
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelPreference,
    ChannelSwitches,
    Contact,
    DigestCadence,
    DigestSettings,
    NotificationStatus,
    Preferences,
    Priority,
    utcnow,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, make_settings
from tests.fakes.http import start_fake
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.smtp import RecordingHandler, start_smtp
from worker import create_worker, open_runtime

PUBLIC_URL = "https://herald.example.com"
SECRET = "unsubscribe-test-secret"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Sent:
    """What the provider received: the email's headers and text body."""

    headers: dict[str, str]
    text: str
    html: str


@dataclass
class Stack:
    client: HeraldClient
    store: Store
    api: httpx.AsyncClient
    collect: Callable[[], list[Sent]]

    async def send(self, notification: AgentNotification) -> list[Sent]:
        """Notify, wait for the outcome, and return every email the provider has received."""
        await (await self.client.notify(notification)).outcome()
        return self.collect()


def _sendgrid_sent(fake: FakeSendGrid) -> list[Sent]:
    out = []
    for request in fake.requests:
        body = request.json()
        assert request.problems == [], request.problems
        text, html = (part["value"] for part in body["content"])
        out.append(Sent(body.get("headers", {}), text, html))
    return out


def _smtp_sent(handler: RecordingHandler) -> list[Sent]:
    out = []
    for received in handler.received:
        message = received.message
        text_part = message.get_body(("plain",))
        html_part = message.get_body(("html",))
        assert text_part is not None and html_part is not None
        headers = {name: str(value) for name, value in message.items()}
        out.append(Sent(headers, text_part.get_content(), html_part.get_content()))
    return out


@pytest.fixture(params=["sendgrid", "smtp"])
async def stack(
    request: pytest.FixtureRequest, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Stack]:
    """A worker whose email goes through SendGrid's fake or a real SMTP server, and the API beside it."""
    provider: dict[str, object]
    if request.param == "sendgrid":
        fake = FakeSendGrid()
        server, task, fake.port = await start_fake(fake)
        provider = {"SENDGRID_API_KEY": "SG.unsubscribe", "SENDGRID_API_HOST": fake.host}
        collect: Callable[[], list[Sent]] = lambda: _sendgrid_sent(fake)  # noqa: E731
    else:
        handler = RecordingHandler()
        controller = start_smtp(handler)
        provider = {"SMTP_URL": f"smtp://herald:secret@127.0.0.1:{controller.port}"}
        collect = lambda: _smtp_sent(handler)  # noqa: E731
    settings = make_settings(
        tmp_path / "herald", public_url=PUBLIC_URL, answer_secret=SECRET, email_from="herald@example.com", **provider
    )
    task_queue = f"unsub-{uuid.uuid4().hex[:12]}"
    try:
        async with (
            open_runtime(settings) as runtime,
            create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
        ):
            app = create_app(settings, store=runtime.store)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as api:
                yield Stack(HeraldClient(temporal_env.client, task_queue, FAST_POLICY), runtime.store, api, collect)
    finally:
        if request.param == "sendgrid":
            server.should_exit = True
            await task
        else:
            controller.stop()


def link_of(sent: Sent) -> str:
    """The https URL in `List-Unsubscribe: <...>`, checked against RFC 8058's form."""
    assert sent.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(https://[^>]+)>", sent.headers["List-Unsubscribe"])
    assert match is not None, sent.headers["List-Unsubscribe"]
    return match.group(1)


def notification(user: str, agent: str = "deploy-bot", priority: Priority = Priority.high) -> AgentNotification:
    return AgentNotification(
        agent_id=agent,
        user_id=user,
        title=f"Deploy finished {uuid.uuid4().hex[:6]}",
        priority=priority,
        channels=[ChannelName.email],
    )


async def new_user(store: Store, preferences: Preferences | None = None) -> str:
    user = f"user-{uuid.uuid4().hex[:8]}"
    await store.users.put_contact(user, Contact(email="ada@example.com"))
    if preferences is not None:
        await store.users.put_preferences(user, preferences)
    return user


async def test_the_one_click_link_turns_that_agents_email_off_and_is_idempotent(stack: Stack) -> None:
    keep = ChannelSwitches(push=True, email=ChannelPreference(enabled=True, min_priority=Priority.medium))
    user = await new_user(stack.store, Preferences(agents={"deploy-bot": keep, "other-bot": ChannelSwitches()}))
    [email] = await stack.send(notification(user))
    link = link_of(email)
    path = link.removeprefix(PUBLIC_URL)
    assert f"{PUBLIC_URL}/#preferences" in email.text and f'href="{PUBLIC_URL}/#preferences"' in email.html
    assert "Manage preferences" in email.html and link in email.text
    assert "stops email from agent deploy-bot" in email.text

    # A browser (or a mail scanner) opening the link changes nothing: the page's button POSTs.
    page = await stack.api.get(path)
    assert page.status_code == 200 and 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert (await stack.store.users.get_preferences(user)).agents["deploy-bot"].email == keep.email

    done = await stack.api.post(path, data=ONE_CLICK)  # what Gmail sends: no cookie, no token
    assert done.status_code == 200 and "unsubscribed from email from agent deploy-bot" in done.text
    after = await stack.store.users.get_preferences(user)
    assert after.agents["deploy-bot"] == ChannelSwitches(
        push=True, email=ChannelPreference(enabled=False, min_priority=Priority.medium)
    ), "only that agent's email is off; its other settings stay"
    assert after.agents["other-bot"] == ChannelSwitches()

    again = await stack.api.post(path, files={"List-Unsubscribe": (None, "One-Click")})  # multipart, as RFC 8058 allows
    assert again.status_code == 200 and "already unsubscribed" in again.text
    assert await stack.store.users.get_preferences(user) == after

    # The next email from that agent is not sent: the preferences say so.
    outcome = await (await stack.client.notify(notification(user))).outcome()
    assert outcome.status is NotificationStatus.no_channel


async def test_a_critical_alerts_link_says_what_it_stops(stack: Stack) -> None:
    user = await new_user(stack.store)
    [email] = await stack.send(notification(user, priority=Priority.critical))
    link_of(email)
    assert "critical alerts like this one included" in email.text
    assert "critical alerts like this one included" in email.html


async def test_the_digests_link_turns_the_digest_off(stack: Stack) -> None:
    digest = DigestSettings(cadence=DigestCadence.daily, hour=7)
    user = await new_user(stack.store, Preferences(digest=digest))
    digest_email = AgentNotification(
        notification_id=f"digest-{uuid.uuid4().hex}",
        agent_id=DIGEST_AGENT,
        user_id=user,
        title="Your digest: 2 notifications from 1 agent",
        priority=Priority.medium,
        channels=[ChannelName.email],
    )
    [email] = await stack.send(digest_email)
    assert "stops this digest" in email.text
    done = await stack.api.post(link_of(email).removeprefix(PUBLIC_URL), data=ONE_CLICK)
    assert done.status_code == 200
    after = await stack.store.users.get_preferences(user)
    assert after.digest == DigestSettings(cadence=DigestCadence.off, hour=7)
    assert after.agents == {}, "the digest's link leaves every agent's email alone"


async def test_forged_expired_and_answer_links_are_refused(stack: Stack) -> None:
    user = await new_user(stack.store)
    [email] = await stack.send(notification(user))
    token = link_of(email).rsplit("/", 1)[1]
    payload, mac = token.split(".")
    other = sign_unsubscribe(b"another-secret", UnsubscribeToken(user, "deploy-bot", int(utcnow().timestamp()) + 60))
    expired = sign_unsubscribe(SECRET.encode(), UnsubscribeToken(user, "deploy-bot", int(utcnow().timestamp()) - 5))
    # An answer link is signed with the same secret but for another use: it must not unsubscribe.
    answer = sign_token(SECRET.encode(), AnswerToken("n1", "approve", int(utcnow().timestamp()) + 60, "nonce"))
    for bad, status, code in (
        (f"{payload}.{mac[::-1]}", 403, "link_forged"),
        (other, 403, "link_forged"),
        (answer, 403, "link_forged"),
        (expired, 410, "link_expired"),
        ("not-a-token", 403, "link_malformed"),
    ):
        for response in (
            await stack.api.post(f"/v1/unsubscribe/{bad}", data=ONE_CLICK),
            await stack.api.get(f"/v1/unsubscribe/{bad}"),
        ):
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), bad
    wrong_body = await stack.api.post(f"/v1/unsubscribe/{token}", data={"List-Unsubscribe": "yes"})
    assert (wrong_body.status_code, wrong_body.json()["error"]["field"]) == (422, "List-Unsubscribe")
    as_json = await stack.api.post(f"/v1/unsubscribe/{token}", json=ONE_CLICK)
    assert as_json.status_code == 415
    assert (await stack.store.users.get_preferences(user)) == Preferences(), "no refused request changed anything"


# --- the pure parts ---------------------------------------------------------------------------------------


def test_a_token_holds_only_ids_and_an_expiry_and_expires() -> None:
    now = utcnow()
    token = UnsubscribeToken("ada", "deploy-bot", int((now + timedelta(days=1)).timestamp()))
    raw = sign_unsubscribe(b"s", token)
    assert verify_unsubscribe(b"s", raw, now) == token
    assert "ada@" not in raw
    with pytest.raises(ValueError, match="expired"):
        verify_unsubscribe(b"s", raw, now + timedelta(days=2))


def test_unsubscribed_is_idempotent_and_keeps_everything_else() -> None:
    prefs = Preferences(default=ChannelSwitches(email=True), digest=DigestSettings(cadence=DigestCadence.hourly))
    once = unsubscribed(prefs, "deploy-bot")
    assert once.agents == {"deploy-bot": ChannelSwitches(email=False)} and once.default == prefs.default
    assert unsubscribed(once, "deploy-bot") == once
    off = unsubscribed(prefs, None)
    assert off.digest == DigestSettings(cadence=DigestCadence.off) and unsubscribed(off, None) == off
    assert unsubscribed(Preferences(), None) == Preferences(), "no digest: nothing to turn off"


def test_what_it_stops() -> None:
    assert what_it_stops("bot") == "email from agent bot"
    assert "critical alerts like this one included" in what_it_stops("bot", Priority.critical)
    assert what_it_stops(None).startswith("this digest")
