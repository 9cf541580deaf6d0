"""Chat URLs in the contact over HTTP: each checked on save (a 422 naming `chat_urls.<index>`), read back masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from tests.conftest import make_settings

URL = "/v1/users/ada/contact"
TOKEN = "T0kenOfTheWebhook-9d2f"
DISCORD = f"discord://1234567890/{TOKEN}"


async def client_for(tmp_path: Path, store: Store, **settings: object) -> httpx.AsyncClient:
    app = create_app(make_settings(tmp_path, **settings), store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(tmp_path, store) as client:
        yield client


def assert_refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert TOKEN not in response.text
    return str(error["message"])


async def test_saved_in_full_read_back_masked(api: httpx.AsyncClient, store: Store) -> None:
    saved = await api.put(URL, json={"email": "ada@example.com", "chat_urls": [DISCORD, "ntfys://ntfy.sh/alerts"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["chat_urls"] == ["discord://…", "ntfys://…"]
    read = await api.get(URL)
    assert read.json() == {"email": "ada@example.com", "chat_urls": ["discord://…", "ntfys://…"]}
    assert TOKEN not in saved.text + read.text
    contact = await store.users.get_contact("ada")  # the store keeps them whole, for the delivery activity
    assert contact is not None and contact.chat_urls == [DISCORD, "ntfys://ntfy.sh/alerts"]


async def test_a_url_apprise_cannot_load_names_its_index(api: httpx.AsyncClient, store: Store) -> None:
    message = assert_refused(await api.put(URL, json={"chat_urls": [DISCORD, f"discord://{TOKEN}"]}), "chat_urls.1")
    assert "Apprise" in message
    assert_refused(await api.put(URL, json={"chat_urls": [f"no scheme {TOKEN}"]}), "chat_urls.0")
    assert await store.users.get_contact("ada") is None  # nothing saved


async def test_a_scheme_not_allowed_is_refused(tmp_path: Path, store: Store) -> None:
    async with await client_for(tmp_path, store, chat_schemes=["ntfys"]) as api:
        message = assert_refused(await api.put(URL, json={"chat_urls": ["ntfys://alerts", DISCORD]}), "chat_urls.1")
    assert "discord://" in message and "HERALD_CHAT_SCHEMES" in message


async def test_too_many_urls_are_refused(api: httpx.AsyncClient) -> None:
    assert_refused(await api.put(URL, json={"chat_urls": [DISCORD] * 6}), "chat_urls")


async def test_a_private_server_is_refused_outside_dev_mode(tmp_path: Path, store: Store) -> None:
    async with await client_for(tmp_path, store, allow_private_webhooks=False) as api:
        message = assert_refused(
            await api.put(URL, json={"chat_urls": [f"json://127.0.0.1:9/hook?token={TOKEN}"]}), "chat_urls.0"
        )
        assert "loopback" in message and "127.0.0.1" not in message
        # A service whose host is an id, not a server (discord://<webhook id>/<token>), is not resolved.
        assert (await api.put(URL, json={"chat_urls": [DISCORD]})).status_code == 200


async def test_masked_urls_sent_back_keep_the_saved_ones(api: httpx.AsyncClient, store: Store) -> None:
    """Read, change the email, save: the chat URLs the client saw masked stay as saved (the browser page does this)."""
    await api.put(URL, json={"email": "ada@example.com", "chat_urls": [DISCORD, "ntfys://ntfy.sh/alerts"]})
    read = (await api.get(URL)).json()
    saved = await api.put(URL, json={**read, "email": "ada@new.example.com"})
    assert saved.status_code == 200, saved.text
    contact = await store.users.get_contact("ada")
    assert contact is not None and contact.chat_urls == [DISCORD, "ntfys://ntfy.sh/alerts"]
    assert contact.email == "ada@new.example.com"
    # A masked URL that matches nothing saved at its index is refused, not stored.
    assert_refused(await api.put(URL, json={"chat_urls": ["ntfys://…", "discord://…"]}), "chat_urls.0")
