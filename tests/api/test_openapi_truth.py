"""The published OpenAPI document and the server agree, one pinned case per mismatch a stranger's
`schemathesis run --checks all` found: each test asks the schema (jsonschema, as a generated client would) and
then the server, and both must give the same answer. Before, each of these disagreed (the docstring says how)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.config import Settings
from tests.conftest import make_settings

SPEC = create_app(Settings().changed(auth=True)).openapi()


def operation(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = SPEC["paths"][path][method]
    return op


def body_ok(method: str, path: str, body: object) -> bool:
    """Whether the operation's published request body schema takes `body`."""
    schema = operation(method, path)["requestBody"]["content"]["application/json"]["schema"]
    document = {**schema, "components": SPEC["components"]}
    validator = jsonschema.Draft202012Validator(document, format_checker=jsonschema.FormatChecker())
    return validator.is_valid(body)


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


NOTIFY = "/v1/notifications"
SILENCE = {"matchers": {"agent_id": "a"}, "ends_at": "2999-01-01T00:00:00Z", "comment": "why"}


@pytest.mark.parametrize(
    ("method", "path", "url", "body", "field"),
    [
        # The schema allowed an empty agent_id; the server refuses it.
        ("post", NOTIFY, NOTIFY, {"agent_id": "", "user_id": "ada", "title": "t"}, "agent_id"),
        ("post", "/v1/events", "/v1/events", {"agent_id": "", "metrics": {"x": 1}}, "agent_id"),
        # user_ids: [""] in a rule.
        (
            "put",
            "/v1/rules/{name}",
            "/v1/rules/r1",
            {"condition": "x > 1", "user_ids": [""]},
            "user_ids.0",
        ),
        # A time_zone of any string.
        (
            "put",
            "/v1/users/{user_id}/preferences",
            "/v1/users/ada/preferences",
            {"time_zone": "Mars/Base"},
            "time_zone",
        ),
        # An empty endpoint in a push subscription.
        (
            "post",
            "/v1/users/{user_id}/push-subscriptions",
            "/v1/users/ada/push-subscriptions",
            {"endpoint": "", "keys": {"p256dh": "a", "auth": "b"}},
            "endpoint",
        ),
        # An empty action_id.
        (
            "post",
            "/v1/notifications/{notification_id}/respond",
            "/v1/notifications/n1/respond",
            {"action_id": ""},
            "action_id",
        ),
        # hour: false in a digest (the server took it as 0).
        (
            "put",
            "/v1/users/{user_id}/preferences",
            "/v1/users/ada/preferences",
            {"digest": {"cadence": "daily", "hour": False}},
            "digest.hour",
        ),
        # up_to: 0 when marking read (the server took it as 1970).
        ("post", "/v1/users/{user_id}/notifications/read", "/v1/users/ada/notifications/read", {"up_to": 0}, "up_to"),
        # {} when marking read: the schema took it, the server refuses it.
        ("post", "/v1/users/{user_id}/notifications/read", "/v1/users/ada/notifications/read", {}, None),
        # A heartbeat's period as true, and an empty channel list.
        *(
            ("put", "/v1/heartbeats/{name}", "/v1/heartbeats/nightly", heartbeat | bad, field)
            for heartbeat in [{"agent_id": "a", "every_seconds": 60, "notify": {"user_id": "ada"}}]
            for bad, field in (
                ({"every_seconds": True}, "every_seconds"),
                ({"grace_seconds": 1.5}, "grace_seconds"),
                ({"notify": {"user_id": "ada", "channels": []}}, "notify.channels"),
            )
        ),
        # An empty webhook_url in a contact.
        ("put", "/v1/users/{user_id}/contact", "/v1/users/ada/contact", {"webhook_url": ""}, "webhook_url"),
        # A silence of everything (no matcher), and one without a reason: both refused by schema and server alike.
        ("post", "/v1/silences", "/v1/silences", {**SILENCE, "matchers": {"max_priority": "low"}}, "matchers"),
        ("post", "/v1/silences", "/v1/silences", {**SILENCE, "comment": "  "}, "comment"),
        ("post", "/v1/silences", "/v1/silences", {**SILENCE, "ends_at": 1900000000}, "ends_at"),
    ],
)
async def test_schema_and_server_refuse_the_same_body(
    api: httpx.AsyncClient, method: str, path: str, url: str, body: dict[str, Any], field: str | None
) -> None:
    """Each body was either schema-valid and refused (empty ids, any time zone, empty endpoint...) or
    schema-invalid and accepted (`hour: false`, `up_to: 0`)."""
    assert not body_ok(method, path, body)
    response = await api.request(method.upper(), url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_silence_the_schema_takes_the_server_takes(api: httpx.AsyncClient) -> None:
    assert body_ok("post", "/v1/silences", SILENCE)
    assert (await api.post("/v1/silences", json=SILENCE)).status_code == 201


@pytest.mark.parametrize("route", ["/codec/encode", "/codec/decode"])
async def test_codec_refuses_a_body_without_payloads(api: httpx.AsyncClient, route: str) -> None:
    """`{}` was answered 200 with no payloads although the schema requires `payloads`."""
    assert not body_ok("post", route, {})
    response = await api.post(route, json={})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "payloads"


async def test_a_body_that_is_not_utf8_is_a_documented_400(api: httpx.AsyncClient) -> None:
    """A non-UTF-8 JSON body got a 400 that no operation listed."""
    assert "400" in operation("post", "/v1/users/{user_id}/test-notification")["responses"]
    response = await api.post(
        "/v1/users/ada/test-notification", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


def test_respond_lists_401() -> None:
    """`respond` answers 401 without a token, which its responses did not list."""
    assert "401" in operation("post", "/v1/notifications/{notification_id}/respond")["responses"]


@pytest.mark.parametrize("field", ["phone_rejected", "webhook_disabled"])
async def test_herald_set_contact_fields_are_read_only(api: httpx.AsyncClient, field: str) -> None:
    """The fields Herald sets were offered as writable; a PUT that sends one sets nothing."""
    schema = SPEC["components"]["schemas"]
    contact = schema.get("Contact-Input") or schema["Contact"]
    assert contact["properties"][field].get("readOnly") is True
    response = await api.put("/v1/users/ada/contact", json={"email": "ada@example.com", field: "set by a client"})
    assert response.status_code == 200, response.text
    assert field not in response.json()


async def test_since_is_a_date_time_not_a_number(api: httpx.AsyncClient) -> None:
    """`since=0.5` was read as 0.5 seconds after 1970 and answered 200, though the parameter is published
    as an ISO 8601 date-time; now it is a 422 that names `since`."""
    parameters = {p["name"]: p for p in operation("get", "/v1/notifications")["parameters"]}
    since = parameters["since"]["schema"]
    published = since.get("anyOf", [since])[0]
    assert published == {"type": "string", "format": "date-time"}
    response = await api.get("/v1/notifications", params={"user_id": "ada", "since": "0.5"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "since"
    fine = await api.get("/v1/notifications", params={"user_id": "ada", "since": "2026-12-01T00:00:00Z"})
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize("route", ["/codec/encode", "/codec/decode"])
async def test_codec_refuses_a_payload_that_is_not_an_object(api: httpx.AsyncClient, route: str) -> None:
    """`{"payloads": ["AAA"]}` was decoded as protobuf's base64 form of a whole message and answered 200, though
    the schema says each payload is an object; now it is a 400 that names `payloads`."""
    assert not body_ok("post", route, {"payloads": ["AAA"]})
    response = await api.post(route, json={"payloads": ["AAA"]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "payloads"
    assert body_ok("post", route, {"payloads": [{"metadata": None, "data": None}]}), "protobuf JSON allows null"


@pytest.mark.parametrize("path", [NOTIFY, "/v1/events"])
def test_the_routes_an_agent_quota_limits_list_429_with_retry_after(path: str) -> None:
    """The quota's refusal is a documented status, with its header, on every route that takes a token."""
    refused = operation("post", path)["responses"]["429"]
    assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert refused["headers"]["Retry-After"]["schema"] == {"type": "integer"}
