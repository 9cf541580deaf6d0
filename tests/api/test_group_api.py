"""POST /v1/notifications with a group_key, on the real dev server: the notification ends `grouped`, its group's one
message goes out, GET shows that message as its delivery; bad group fields are a 422 naming the field."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.api.app import create_app
from herald.domain.grouping import group_workflow_id
from herald.models import Contact
from tests.api.test_app import assert_error
from tests.conftest import Harness
from tests.faults.procs import eventually


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        yield client


def body(user: str, title: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"agent_id": "shop-bot", "user_id": user, "title": title, "channels": ["email"]}
    values |= {"group_key": "checkout/eu", "group_wait_seconds": 4, "group_interval_seconds": 1}
    return values | fields


async def test_grouped_through_the_api_one_message_shown_as_each_members_delivery(
    herald: Harness, api: httpx.AsyncClient
) -> None:
    user = f"ada-{uuid.uuid4().hex[:8]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    sent = [await api.post("/v1/notifications", json=body(user, f"checkout error {i}")) for i in range(3)]
    assert [r.status_code for r in sent] == [202] * 3
    ids = [r.json()["notification_id"] for r in sent]
    await asyncio.gather(*(herald.client.get_handle(i).outcome() for i in ids))

    views: dict[str, dict[str, Any]] = {}

    async def carried() -> bool:
        for notification_id in ids:
            view = (await api.get(f"/v1/notifications/{notification_id}")).json()
            if view.get("group_delivery") is None:
                return False
            views[notification_id] = view
        return True

    await eventually(carried, "the group's message on every member")
    group_id = group_workflow_id(user, "shop-bot", "checkout/eu")
    assert {v["status"] for v in views.values()} == {"grouped"}
    assert {v["group_id"] for v in views.values()} == {group_id}
    [message_id] = {v["group_delivery"]["notification_id"] for v in views.values()}
    assert {v["group_delivery"]["size"] for v in views.values()} == {3}
    assert all(v["channels"]["email"]["status"] == "delivered" for v in views.values())
    message = (await api.get(f"/v1/notifications/{message_id}")).json()
    assert message["status"] == "delivered" and message["channels"]["email"]["status"] == "delivered"

    listed = (await api.get("/v1/notifications", params={"user_id": user, "status": "grouped"})).json()
    assert {item["notification_id"] for item in listed["items"]} == set(ids)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"group_key": " padded"}, "group_key"),
        ({"group_key": "x" * 201}, "group_key"),
        ({"group_wait_seconds": 3601}, "group_wait_seconds"),
        ({"group_interval_seconds": 0}, "group_interval_seconds"),
        ({"group_interval_seconds": "60"}, "group_interval_seconds"),
    ],
)
async def test_bad_group_fields_are_a_422_naming_the_field(
    api: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    response = await api.post("/v1/notifications", json=body("ada", "checkout error", **fields))
    assert_error(response, 422, field)
