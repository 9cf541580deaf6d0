"""Web Push subscriptions over HTTP: saved per user in the real store, refused with the field named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.adapters.store import Store
from herald.adapters.vapid import generate_vapid_keys
from herald.api.app import create_app
from tests.conftest import make_settings
from tests.fakes.webpush import Browser

ENDPOINT = "https://push.example.net/wpush/v2/gAAAAABsecret"


async def client_for(tmp_path: Path, store: Store, **settings: Any) -> httpx.AsyncClient:
    app = create_app(make_settings(tmp_path, **settings), store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(tmp_path, store) as client:
        yield client


def subscription_json(endpoint: str = ENDPOINT, browser: Browser | None = None) -> dict[str, Any]:
    return (browser or Browser()).subscription(endpoint).model_dump(mode="json")


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    return error


async def test_subscribe_saves_it_for_the_user(api: httpx.AsyncClient, store: Store) -> None:
    body = subscription_json()
    response = await api.post("/v1/users/ada/push-subscriptions", json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {"user_id": "ada", "endpoint": ENDPOINT}
    [saved] = await store.users.push_subscriptions("ada")
    assert saved.endpoint == ENDPOINT and saved.keys.p256dh == body["keys"]["p256dh"]
    assert await store.users.push_subscriptions("bob") == []


async def test_posting_the_same_endpoint_again_replaces_it(api: httpx.AsyncClient, store: Store) -> None:
    await api.post("/v1/users/ada/push-subscriptions", json=subscription_json())
    renewed = subscription_json()
    assert (await api.post("/v1/users/ada/push-subscriptions", json=renewed)).status_code == 201
    [saved] = await store.users.push_subscriptions("ada")
    assert saved.keys.auth == renewed["keys"]["auth"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.update(endpoint="not a url"), "endpoint"),
        (lambda b: b.pop("endpoint"), "endpoint"),
        (lambda b: b["keys"].pop("auth"), "keys.auth"),
        (lambda b: b["keys"].update(p256dh="AAAA"), "keys.p256dh"),
        (lambda b: b["keys"].update(auth="c2hvcnQ"), "keys.auth"),
    ],
)
async def test_an_invalid_subscription_names_the_field(
    api: httpx.AsyncClient, store: Store, change: Any, field: str
) -> None:
    body = subscription_json()
    change(body)
    error = error_of(await api.post("/v1/users/ada/push-subscriptions", json=body), 422)
    assert error["field"] == field
    assert "gAAAAABsecret" not in error["message"]
    assert await store.users.push_subscriptions("ada") == []


async def test_unsubscribe_removes_it_then_404s(api: httpx.AsyncClient, store: Store) -> None:
    await api.post("/v1/users/ada/push-subscriptions", json=subscription_json())
    response = await api.request("DELETE", "/v1/users/ada/push-subscriptions", json={"endpoint": ENDPOINT})
    assert response.status_code == 204 and response.content == b""
    assert await store.users.push_subscriptions("ada") == []
    again = await api.request("DELETE", "/v1/users/ada/push-subscriptions", json={"endpoint": ENDPOINT})
    error = error_of(again, 404)
    assert error["field"] == "endpoint" and "gAAAAABsecret" not in error["message"]


async def test_a_user_cannot_remove_another_users_subscription(api: httpx.AsyncClient, store: Store) -> None:
    await api.post("/v1/users/ada/push-subscriptions", json=subscription_json())
    response = await api.request("DELETE", "/v1/users/bob/push-subscriptions", json=subscription_json())
    error_of(response, 404)
    assert len(await store.users.push_subscriptions("ada")) == 1


async def test_unsubscribe_without_an_endpoint_is_422(api: httpx.AsyncClient) -> None:
    response = await api.request("DELETE", "/v1/users/ada/push-subscriptions", json={})
    assert error_of(response, 422)["field"] == "endpoint"


async def test_vapid_public_key(tmp_path: Path, store: Store, api: httpx.AsyncClient) -> None:
    error = error_of(await api.get("/v1/vapid-public-key"), 404)
    assert "VAPID_PRIVATE_KEY" in error["message"]

    keys = generate_vapid_keys()
    async with await client_for(tmp_path, store, vapid_private_key=keys.private_key) as configured:
        response = await configured.get("/v1/vapid-public-key")
    assert response.status_code == 200
    assert response.json() == {"public_key": keys.public_key}
