"""The chat channel through the real Apprise library, against a loopback `json://` receiver."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.chat import ChatChannel, url_problem
from herald.adapters.store import Store
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority
from tests.fakes.http import FakeHTTPServer

SECRET = "s3cr3t-chat-token-4f9a"


def any_scheme(_scheme: str) -> bool:
    return True


def channel(*, allow_private: bool = True, allowed: Any = any_scheme) -> ChatChannel:
    return ChatChannel(
        allowed=allowed,
        link=lambda m: f"http://herald.test/v1/notifications/{m.notification.notification_id}",
        timeout=3.0,
        allow_private=allow_private,
    )


async def message_to(store: Store, *urls: str, **notification: Any) -> OutboundMessage:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    await store.users.put_contact(user_id, Contact(chat_urls=list(urls)))
    fields: dict[str, Any] = {"agent_id": "monitor", "user_id": user_id, "title": "Disk full", "body": "98% on db-1"}
    fields.update(notification)
    n = AgentNotification(**fields)
    contact = await store.users.get_contact(user_id)
    assert contact is not None
    return OutboundMessage(n, ChannelName.chat, f"notification/{n.notification_id}/chat", contact)


def json_url(fake: FakeHTTPServer, path: str) -> str:
    """A `json://` Apprise URL for the fake's path, with a secret in it as a real webhook token would be."""
    return f"json://127.0.0.1:{fake.port}{path}?token={SECRET}"


def path() -> str:
    return f"/chat/{uuid.uuid4().hex[:8]}"


async def test_one_send_per_url_with_title_priority_body_and_link(store: Store, fake_http: FakeHTTPServer) -> None:
    first, second = path(), path()
    fake_http.script(first, 200)
    fake_http.script(second, 200)
    message = await message_to(store, json_url(fake_http, first), json_url(fake_http, second), priority=Priority.high)
    result = await channel().send(message)
    assert result.provider_message_id == "apprise:2/2"
    assert len(fake_http.received(first)) == 1 and len(fake_http.received(second)) == 1
    sent = json.loads(fake_http.received(first)[0].body)
    assert sent["title"] == "Disk full"
    assert "Priority: high" in sent["message"] and "98% on db-1" in sent["message"]
    assert f"/v1/notifications/{message.notification.notification_id}" in sent["message"]
    assert sent["type"] == "warning"


async def test_failure_is_transient_and_names_the_index_not_the_url(store: Store, fake_http: FakeHTTPServer) -> None:
    p = path()
    fake_http.script(p, 503)
    message = await message_to(store, json_url(fake_http, p))
    with pytest.raises(TransientDeliveryError) as exc:
        await channel().send(message)
    assert exc.value.type_name == "ChatUnavailable"
    assert "chat URL 0" in str(exc.value)
    assert SECRET not in str(exc.value) and "127.0.0.1" not in str(exc.value)


async def test_one_url_taking_it_delivers(store: Store, fake_http: FakeHTTPServer) -> None:
    bad, good = path(), path()
    fake_http.script(bad, 503)
    fake_http.script(good, 200)
    message = await message_to(store, json_url(fake_http, bad), json_url(fake_http, good))
    assert (await channel().send(message)).provider_message_id == "apprise:1/2"


async def test_no_urls_unloadable_url_and_refused_scheme_are_permanent(store: Store) -> None:
    with pytest.raises(ContactMissing):
        await channel().send(await message_to(store))
    with pytest.raises(PermanentDeliveryError) as exc:
        await channel().send(await message_to(store, "discord://only-an-id"))
    assert exc.value.type_name == "ChatUrlInvalid"
    only_ntfy = channel(allowed=lambda scheme: scheme == "ntfys")
    with pytest.raises(PermanentDeliveryError) as exc:
        await only_ntfy.send(await message_to(store, f"json://example.com/{SECRET}"))
    assert exc.value.type_name == "ChatSchemeRefused"
    assert SECRET not in str(exc.value)


async def test_private_addresses_refused_at_send_time_outside_dev_mode(store: Store, fake_http: FakeHTTPServer) -> None:
    """The guard runs on the connection Apprise's plugin opens: a loopback receiver is never reached."""
    p = path()
    fake_http.script(p, 200)
    with pytest.raises(PermanentDeliveryError) as exc:
        await channel(allow_private=False).send(await message_to(store, json_url(fake_http, p)))
    assert exc.value.type_name == "ChatUrlRefused"
    assert "loopback" in str(exc.value)
    assert fake_http.received(p) == []


async def test_the_url_never_reaches_the_logs(
    store: Store, fake_http: FakeHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ok, failing = path(), path()
    fake_http.script(ok, 200)
    fake_http.script(failing, 500)
    await channel().send(await message_to(store, json_url(fake_http, ok), json_url(fake_http, failing)))
    with pytest.raises(PermanentDeliveryError):
        await channel(allow_private=False).send(await message_to(store, json_url(fake_http, ok)))
    assert len(fake_http.received(ok)) == 1 and len(fake_http.received(failing)) == 1
    assert SECRET not in caplog.text and ok not in caplog.text and failing not in caplog.text


def test_url_problem_names_no_part_of_the_url() -> None:
    assert url_problem(f"json://example.com/{SECRET}", any_scheme) is None
    unloadable = url_problem(f"nosuchscheme://{SECRET}", any_scheme)
    assert unloadable is not None and SECRET not in unloadable
    refused = url_problem(f"json://example.com/{SECRET}", lambda scheme: scheme == "discord")
    assert refused is not None and "json://" in refused and SECRET not in refused
