"""The Slack and Telegram provider routes refuse before reading: not configured is a 404, no or a wrong signature or
secret a 401, and a refused request reaches neither Temporal nor the store (this app has no Temporal at all)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from herald.adapters.store import Store
from herald.api.app import create_app
from tests.conftest import make_settings
from tests.workflows.test_chat_answers import SIGNING_SECRET, TELEGRAM_SECRET, slack_signed

BODY = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U024BE7LH"}, "actions": []})})

EVENT = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "user": "U024BE7LH"}})


def json_signed(body: str, **signing: int) -> dict[str, str]:
    return {**slack_signed(body, **signing), "Content-Type": "application/json"}


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test")  # type: ignore[arg-type]


async def test_unconfigured_routes_are_404(tmp_path: Path, store: Store) -> None:
    async with client(create_app(make_settings(tmp_path / "h"), store=store)) as api:
        slack = await api.post("/v1/providers/slack/interactions", content=BODY, headers=slack_signed(BODY))
        assert slack.status_code == 404 and slack.json()["error"]["code"] == "slack_not_configured"
        events = await api.post("/v1/providers/slack/events", content=EVENT, headers=json_signed(EVENT))
        assert events.status_code == 404 and events.json()["error"]["code"] == "slack_not_configured"
        telegram = await api.post("/v1/providers/telegram/webhook", json={})
        assert telegram.status_code == 404 and telegram.json()["error"]["code"] == "telegram_not_configured"


async def test_unsigned_or_wrongly_signed_requests_are_401(tmp_path: Path, store: Store) -> None:
    settings = make_settings(
        tmp_path / "h", SLACK_SIGNING_SECRET=SIGNING_SECRET, TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET
    )
    async with client(create_app(settings, store=store)) as api:
        path = "/v1/providers/slack/interactions"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await api.post(path, content=BODY, headers=form)).status_code == 401
        for bad in ("not-a-number", "", "1" * 40):
            headers = {**slack_signed(BODY), "X-Slack-Request-Timestamp": bad}
            assert (await api.post(path, content=BODY, headers=headers)).status_code == 401
        future = slack_signed(BODY, timestamp=int(time.time()) + 600)
        assert (await api.post(path, content=BODY, headers=future)).status_code == 401
        # Signed, but not a Herald button: an empty 200, nothing looked up (there is no Temporal here).
        assert (await api.post(path, content=BODY, headers=slack_signed(BODY))).status_code == 200
        events = "/v1/providers/slack/events"
        assert (await api.post(events, content=EVENT, headers={"Content-Type": "application/json"})).status_code == 401
        stale = json_signed(EVENT, timestamp=int(time.time()) - 301)
        assert (await api.post(events, content=EVENT, headers=stale)).status_code == 401
        # Signed, but not JSON: 415; signed, but no thread reply: an empty 200, nothing looked up.
        form = slack_signed(EVENT)
        assert (await api.post(events, content=EVENT, headers=form)).status_code == 415
        signed = await api.post(events, content=EVENT, headers=json_signed(EVENT))
        assert signed.status_code == 200 and signed.content == b""
        hook = "/v1/providers/telegram/webhook"
        assert (await api.post(hook, json={"message": {}})).status_code == 401
        wrong = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET + "x"}
        assert (await api.post(hook, json={"message": {}}, headers=wrong)).status_code == 401
