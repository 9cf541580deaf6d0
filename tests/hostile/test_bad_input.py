"""Hostile bodies against a live `herald api` (auth on, not dev): oversize, deeply nested, not UTF-8, and webhook
URLs that point inward. Each is refused in the error shape, starts nothing, and leaves the API answering.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.api.events import BodyLimit
from herald.api.guard import NOT_UTF8, SURROGATE, BodyProblem, body_problem
from herald.models.common import METADATA_MAX_DEPTH
from herald.models.notification import json_depth
from tests.hostile.conftest import LiveStack

DEEP = "[" * 10_000 + "]" * 10_000  # 20 KB: under every size limit, far past any sane nesting


@pytest.fixture
async def api(stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers("admin"), timeout=30) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "field"} <= set(body["error"]), body
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def notification(user_id: str, **fields: Any) -> dict[str, Any]:
    return {"agent_id": "support-agent", "user_id": user_id, "title": "Deploy finished", **fields}


async def started_for(stack: LiveStack, user_id: str) -> list[str]:
    query = f'TaskQueue="{stack.task_queue}" AND HeraldUserId="{user_id}"'
    return [execution.id async for execution in stack.temporal.list_workflows(query)]


async def assert_nothing_started_then_one(api: httpx.AsyncClient, stack: LiveStack, user_id: str) -> None:
    """No workflow for `user_id` so far; one valid request then shows up, so the query can see them at all."""
    assert await started_for(stack, user_id) == []
    sent = await api.post("/v1/notifications", json=notification(user_id, channels=["email"]))
    assert sent.status_code == 202, sent.text
    for _ in range(200):
        found = await started_for(stack, user_id)
        if found:
            assert found == [sent.json()["workflow_id"]]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the valid notification never became visible")


async def chunks(size: int) -> AsyncIterator[bytes]:
    """A body sent chunked, with no Content-Length to judge it by."""
    yield b'{"agent_id": "support-agent", "user_id": "ada", "title": "x", "body": "'
    for _ in range(size // 65536):
        yield b"a" * 65536
    yield b'"}'


async def test_oversize_bodies_are_refused_before_parsing(api: httpx.AsyncClient, stack: LiveStack) -> None:
    user = f"big-{uuid.uuid4().hex[:8]}"
    big = "x" * (2 * 1024 * 1024)
    cases = [
        ("POST", "/v1/notifications", notification(user, body=big)),
        ("PUT", f"/v1/users/{user}/preferences", {"default": {"email": True}, "padding": big}),
        ("PUT", f"/v1/users/{user}/contact", {"email": "a@example.com", "padding": big}),
        ("PUT", "/v1/rules/big", {"condition": "x > 1", "user_ids": [user], "body": big}),
        ("POST", "/v1/events", {"agent_id": "support-agent", "metrics": {"x": 1}, "padding": "x" * 70_000}),
    ]
    for method, path, body in cases:
        error = error_of(await api.request(method, path, json=body), 413)
        assert error["code"] == "payload_too_large" and "KB" in error["message"]
    # Chunked, without Content-Length: counted as it arrives.
    sent = await api.post(
        "/v1/notifications", content=chunks(2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert error_of(sent, 413)["code"] == "payload_too_large"
    # A body over the notification's own limit but under the request limit: refused by the model, naming the field.
    error = error_of(await api.post("/v1/notifications", json=notification(user, body="é" * 6000)), 422)
    assert error["field"] == "body" and "12000 bytes" in error["message"]
    assert (await stack_health(api)) == 200
    await assert_nothing_started_then_one(api, stack, user)


async def stack_health(api: httpx.AsyncClient) -> int:
    return (await api.get("/healthz")).status_code


async def test_deeply_nested_json_is_refused_everywhere(api: httpx.AsyncClient, stack: LiveStack) -> None:
    user = f"deep-{uuid.uuid4().hex[:8]}"
    inner = '{"agent_id": "support-agent", "user_id": "' + user + '", "title": "t", "metadata": {"x": ' + DEEP + "}}"
    for method, path, body, status in [
        ("POST", "/v1/notifications", DEEP, 400),
        ("POST", "/v1/notifications", inner, 400),
        ("POST", "/v1/events", '{"agent_id": "support-agent", "metrics": ' + DEEP + "}", 400),
        ("PUT", f"/v1/users/{user}/preferences", '{"agents": ' + DEEP + "}", 400),
        ("PUT", f"/v1/users/{user}/contact", DEEP, 400),
        ("PUT", "/v1/rules/deep", '{"user_ids": ' + DEEP + "}", 400),
        ("POST", f"/v1/users/{user}/push-subscriptions", DEEP, 400),
        ("POST", "/codec/decode", DEEP, 400),
        ("POST", "/codec/encode", '{"payloads": ' + DEEP + "}", 400),
    ]:
        response = await api.request(method, path, content=body, headers={"content-type": "application/json"})
        error = error_of(response, status)
        assert "nested" in error["message"] or error["code"] == "invalid_payloads", (path, error)
    # Nesting JSON can parse, but deeper than metadata may go (Temporal's decoder stops near 200 levels).
    for depth in (METADATA_MAX_DEPTH + 1, 150, 900):
        metadata = {"x": json.loads("[" * depth + "]" * depth)}
        error = error_of(await api.post("/v1/notifications", json=notification(user, metadata=metadata)), 422)
        assert error["field"] == "metadata"
        assert error["message"] == f"metadata: is nested {depth + 1} levels deep; the limit is {METADATA_MAX_DEPTH}"
    assert await stack_health(api) == 200
    await assert_nothing_started_then_one(api, stack, user)


async def test_bodies_that_are_not_utf8_are_refused(api: httpx.AsyncClient, stack: LiveStack) -> None:
    user = f"bytes-{uuid.uuid4().hex[:8]}"
    for method, path, body in [
        ("POST", "/v1/notifications", b'{"agent_id": "a", "user_id": "%s", "title": "\xff\xfe"}' % user.encode()),
        ("POST", "/v1/notifications", b"\xff\xfe\x00\x00"),
        # UTF-16 is JSON to Python's json.loads, not to RFC 8259.
        ("POST", "/v1/notifications", '{"agent_id": "a", "user_id": "u", "title": "t"}'.encode("utf-16")),
        ("POST", "/v1/notifications", b'{"agent_id": "a", "user_id": "u", "title": "\xed\xa0\x80"}'),  # a surrogate
        ("POST", "/v1/events", b'{"agent_id": "support-agent", "metrics": {"x": "\xc3\x28"}}'),
        ("PUT", "/v1/users/ada/preferences", b'{"time_zone": "Europe/\xc0\xafBerlin"}'),  # an overlong slash
    ]:
        response = await api.request(method, path, content=body, headers={"content-type": "application/json"})
        error = error_of(response, 400)
        assert error == {"code": "invalid_request", "message": "the request body is not UTF-8 text", "field": None}
    # A lone surrogate written as a JSON escape is valid JSON but no text: refused, naming where it is.
    for method, path, raw, field in [
        ("POST", "/v1/notifications", '{"agent_id": "a", "user_id": "u", "title": "\\ud800 alarm"}', "title"),
        ("POST", "/v1/notifications", '{"title": "t", "metadata": {"a": [1, {"b": "x\\uDFFF"}]}}', "metadata.a.1.b"),
        ("POST", "/v1/events", '{"agent_id": "support-agent", "metrics": {"s": "\\ud83d"}}', "metrics.s"),
        ("PUT", "/v1/users/ada/contact", '{"email": "\\ud800@example.com"}', "email"),
    ]:
        response = await api.request(method, path, content=raw, headers={"content-type": "application/json"})
        error = error_of(response, 422)
        assert error["field"] == field and "surrogate" in error["message"], error
    # A proper pair is one emoji, not a problem.
    assert (await api.put(f"/v1/users/{user}/contact", json={"email": "ada@example.com"})).status_code == 200
    pair = json.dumps(notification(user, title="\ud83d\udea8 paged", channels=["email"]))
    assert "\\ud83d\\udea8" in pair
    response = await api.post("/v1/notifications", content=pair, headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    assert (await wait_final(api, response.json()["notification_id"]))["status"] == "delivered"
    # Bytes that are not UTF-8 in the path or the query: a 4xx naming the parameter.
    error = error_of(await api.get("/v1/notifications/%ff%fe"), 422)
    assert error["field"] == "notification_id"
    error = error_of(
        await api.get("/v1/notifications", params={"cursor": "\udcff".encode("utf-8", "surrogateescape")}), 422
    )
    assert error["field"] == "cursor"
    assert await stack_health(api) == 200


async def wait_final(api: httpx.AsyncClient, notification_id: str) -> dict[str, Any]:
    for _ in range(400):
        response = await api.get(f"/v1/notifications/{notification_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        if view["status"] != "pending":
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"notification {notification_id} still pending")


# Every way of writing an address Herald must not post to; none of these names needs DNS beyond /etc/hosts.
INWARD_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[::ffff:169.254.169.254]/latest", "link-local"),
    ("http://10.0.0.5/hook", "private"),
    ("https://10.255.255.254:8443/hook", "private"),
    ("http://172.31.0.1/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[fd12:3456::1]/hook", "private"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[0:0:0:0:0:ffff:7f00:1]/hook", "loopback"),
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.1/hook", "loopback"),  # inet_aton's short forms
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one decimal number
    ("http://0x7f000001/hook", "loopback"),
    ("http://017700000001/hook", "loopback"),  # octal
    ("http://0x7f.0.0.1/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://LOCALHOST/hook", "loopback"),
    ("http://localhost:6379/", "loopback"),  # Redis, say
    ("http://anyone@127.0.0.1/hook", "loopback"),  # user info before the host
    ("http://127.0.0.1#@public.example/hook", "loopback"),  # a fragment hiding the real host
    ("http://0.0.0.0/hook", "non-public"),
    ("http://[::]/hook", "non-public"),
    ("http://100.64.0.1/hook", "non-public"),  # carrier-grade NAT
    ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local"),  # NAT64 of the metadata address
    ("http://[2002:7f00:1::1]/hook", "loopback"),  # 6to4 around 127.0.0.1
    ("http://[2002:a9fe:a9fe::1]/hook", "link-local"),  # 6to4 around the metadata address
    ("http://[fec0::1]/hook", "non-public"),  # site-local, deprecated but routable inside
]


@pytest.mark.parametrize(("url", "reason"), INWARD_URLS)
async def test_webhook_urls_pointing_inward_are_refused(
    api: httpx.AsyncClient, stack: LiveStack, url: str, reason: str
) -> None:
    user = f"ssrf-{uuid.uuid4().hex[:8]}"
    saved = {"email": "ada@example.com"}
    assert (await api.put(f"/v1/users/{user}/contact", json=saved)).status_code == 200
    error = error_of(await api.put(f"/v1/users/{user}/contact", json={**saved, "webhook_url": url}), 422)
    assert error["field"] == "webhook_url"
    assert reason in error["message"] and "HERALD_ALLOW_PRIVATE_WEBHOOKS" in error["message"]
    assert url not in error["message"]
    assert (await api.get(f"/v1/users/{user}/contact")).json() == saved


async def test_a_host_name_in_etc_hosts_that_means_loopback_is_refused(api: httpx.AsyncClient) -> None:
    """Names resolve through the system resolver, /etc/hosts included: a friendly name is no way around it."""
    hosts = open("/etc/hosts").read().split()
    names = [name for name in ("localhost", "vm", "runsc", "ip6-localhost") if name in hosts]
    assert names
    for name in names:
        response = await api.put("/v1/users/ada/contact", json={"webhook_url": f"http://{name}:8080/hook"})
        assert error_of(response, 422)["field"] == "webhook_url"


# --- the pure parts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (b'{"title": "ok \\ud83d\\udea8"}', "application/json", None),  # a pair is one emoji
        (b'{"title": "\\\\ud800"}', "application/json", None),  # an escaped backslash, then text
        (
            b'{"a": {"b": ["\\udc00"]}}',
            "application/json; charset=utf-8",
            BodyProblem(422, f"a.b.0: {SURROGATE}", "a.b.0"),
        ),
        (b'"\\ud800"', "application/json", BodyProblem(422, SURROGATE, None)),
        (b'{"\\ud800": 1}', "application/merge-patch+json", BodyProblem(422, f"?: {SURROGATE}", "?")),
        (b"\xff", "application/json", BodyProblem(400, NOT_UTF8)),
        (b"\xff", "application/x-www-form-urlencoded", None),  # not JSON: the route reads it
        (b'{"x": "\\ud800"', "application/json", None),  # not JSON at all: the route says so
        (b"", "application/json", None),
    ],
)
def test_body_problem(body: bytes, content_type: str, problem: BodyProblem | None) -> None:
    assert body_problem(body, content_type) == problem


def test_json_depth_and_the_body_limits() -> None:
    assert json_depth(1) == 0 and json_depth({}) == 1 and json_depth({"a": [[]]}) == 3
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    assert json_depth(deep) == 5001  # no recursion
    limit = BodyLimit(app=None, limits={"/v1/events": 10, "/codec/": 30}, default=20)  # type: ignore[arg-type]
    assert [limit.limit_for(p) for p in ("/v1/events", "/codec/decode", "/v1/events/x", "/")] == [10, 30, 20, 20]
