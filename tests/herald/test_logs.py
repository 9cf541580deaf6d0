"""Structured logs: one JSON object per line, naming the notification and workflow, never personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from herald.adapters.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    bind,
    ids_from_workflow_id,
    log_scope,
    make_handler,
)
from herald.api.app import create_app
from herald.models import AgentNotification, ChannelName, Contact, NotificationStatus
from tests.conftest import Harness


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Herald's log lines at INFO, as `herald worker` writes them (JSON, with the context filter)."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("herald")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("herald.test", logging.WARNING, __file__, 1, message, args, exc_info)


async def test_a_line_from_inside_an_activity_names_its_notification_and_workflow(
    herald: Harness, captured: io.StringIO
) -> None:
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    note = AgentNotification(agent_id="a", user_id="ada", title="Deploy finished", channels=[ChannelName.email])
    assert (await (await herald.client.notify(note)).outcome()).status is NotificationStatus.delivered
    ours = [line for line in lines(captured) if line.get("notification_id") == note.notification_id]
    delivered = [line for line in ours if line["logger"] == "herald.delivery"]
    assert delivered, captured.getvalue()
    assert delivered[0]["workflow_id"] == f"notification/{note.notification_id}"
    assert delivered[0]["message"] == "delivered on email (attempt 1)"
    assert {"time", "level", "logger", "message"} <= set(delivered[0])
    assert any(line["logger"] == "herald.audit" for line in ours)
    assert "ada@example.com" not in captured.getvalue() and "Deploy finished" not in captured.getvalue()


def test_json_lines_drop_an_exception_message_but_keep_its_type_and_frames() -> None:
    try:
        raise ValueError("could not reach ada@example.com")
    except ValueError as exc:
        entry = json.loads(JsonFormatter().format(record("send failed: %s", "TypeName", exc=exc)))
    assert entry["message"] == "send failed: TypeName"
    assert entry["level"] == "WARNING" and entry["logger"] == "herald.test"
    assert entry["error_type"] == "ValueError"
    assert "test_logs.py" in entry["traceback"] and "ada@example.com" not in json.dumps(entry)
    assert datetime_like(entry["time"])


def datetime_like(text: str) -> bool:
    return datetime.fromisoformat(text).utcoffset() is not None


def test_text_lines_show_the_workflow_and_no_exception_message() -> None:
    line = record("held")
    line.workflow_id = "notification/n1"
    assert TextFormatter().format(line).endswith("WARNING herald.test: held [notification/n1]")
    try:
        raise RuntimeError("+14155550100 refused")
    except RuntimeError as exc:
        text = TextFormatter().format(record("boom", exc=exc))
    assert "RuntimeError" in text and "+14155550100" not in text


def test_ids_come_from_the_workflow_id_and_the_request_scope() -> None:
    assert ids_from_workflow_id("notification/n1") == {"workflow_id": "notification/n1", "notification_id": "n1"}
    assert ids_from_workflow_id("digest/ada") == {"workflow_id": "digest/ada"}
    plain = record("outside any scope")
    ContextFilter().filter(plain)
    assert not hasattr(plain, "notification_id")
    bind(notification_id="ignored")  # no scope: nothing to fill
    with log_scope():
        bind(notification_id="n2")
        inside = record("inside")
        ContextFilter().filter(inside)
    assert (inside.notification_id, inside.workflow_id) == ("n2", "notification/n2")  # type: ignore[attr-defined]


async def test_api_request_lines_name_the_route_and_notification_not_the_query(
    herald: Harness, captured: io.StringIO
) -> None:
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        assert (await api.get("/v1/notifications/missing-one?token=hrt_secret")).status_code == 404
    (line,) = [line for line in lines(captured) if line["logger"] == "herald.api"]
    assert line["route"] == "/v1/notifications/{notification_id}" and line["status"] == 404
    assert line["notification_id"] == "missing-one" and line["method"] == "GET"
    assert "hrt_secret" not in captured.getvalue()


async def test_http_clients_do_not_log_the_urls_they_call(capfd: pytest.CaptureFixture[str]) -> None:
    """A webhook URL, a Web Push endpoint or an agent's callback can carry a token in its path. httpx logs
    every request's full URL at INFO ("HTTP Request: POST https://..."), and `herald worker` / `herald api`
    log at INFO: those lines used to reach their logs. Now httpx and httpcore log warnings only."""
    from herald.adapters.logs import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("json", "INFO")
        transport = httpx.MockTransport(lambda request: httpx.Response(204))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post("https://hooks.example.com/services/T000/B000/secret-token-in-the-path")
        logging.getLogger("herald.test").info("still logging")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capfd.readouterr().err
    assert "still logging" in err
    assert "secret-token-in-the-path" not in err
