"""With HERALD_CODEC_KEYS, a real NotificationWorkflow leaves only ciphertext in Temporal's history: read raw,
no title, body, email address or phone number appears; read through the codec (the client, or the real
`temporal` CLI against Herald's /codec endpoint), everything comes back."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from herald.adapters.codec import CodecKey, UnknownCodecKey
from herald.api.app import create_app
from herald.config import Settings, temporal_binary
from herald.models import AgentNotification, ChannelName, Contact, NotificationRequest, NotificationStatus, Priority
from starter import HeraldClient
from starter.client import connect_temporal
from tests.conftest import FAST_POLICY, make_settings
from tests.fakes.http import start_fake
from worker import create_worker, open_runtime

K1 = CodecKey("k1", bytes(range(32)))
ADMIN_KEY = "admin-" + "h" * 40
EMAIL = "ada.lovelace@example.com"
PHONE = "+14155550123"
TITLE = "Refund of 412 EUR approved for Ada"
BODY = "The refund for order 88321 reaches the card ending 4242 within five days."
SECRETS = (EMAIL, PHONE, TITLE, BODY)


def clear_text(history_json: str) -> str:
    """The history's JSON plus every base64 string in it decoded: where a payload's plain text would show."""
    parts = [history_json]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            try:
                parts.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))
            except ValueError:
                pass

    walk(json.loads(history_json))
    return "\n".join(parts)


def failures(value: Any) -> list[dict[str, Any]]:
    """Every Failure object in a history's JSON (they carry `message` beside `source`/`stackTrace`)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if "failure" in value and isinstance(value["failure"], dict):
            found.append(value["failure"])
        for item in value.values():
            found += failures(item)
    elif isinstance(value, list):
        for item in value:
            found += failures(item)
    return found


@dataclass
class Encrypted:
    client: Client  # connect_temporal with HERALD_CODEC_KEYS: what the worker, starter and API use
    plain: Client  # no codec: what Temporal itself, and anyone reading its database, sees
    settings: Settings
    workflow_id: str
    notification: AgentNotification
    history: WorkflowHistory


@pytest.fixture
async def encrypted(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Encrypted]:
    target = temporal_env.client.service_client.config.target_host
    settings = make_settings(
        tmp_path / "herald",
        temporal_address=target,
        TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        codec_keys=K1.entry(),
        auth=True,
        admin_key=ADMIN_KEY,
    )
    client = await connect_temporal(settings)
    plain = await Client.connect(target, namespace=temporal_env.client.namespace)
    queue = f"test-{uuid.uuid4().hex[:12]}"
    notification = AgentNotification(
        agent_id="billing-agent",
        user_id="ada",
        title=TITLE,
        body=BODY,
        priority=Priority.high,
        # Push has no live connection, so its activity fails: the failure is in the history too.
        channels=[ChannelName.push, ChannelName.email],
        metadata={"reply_to": EMAIL, "callback": PHONE},
    )
    async with (
        open_runtime(settings) as runtime,
        create_worker(client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        await runtime.store.users.put_contact("ada", Contact(email=EMAIL, phone=PHONE))
        handle = await HeraldClient(client, queue, FAST_POLICY).notify(notification)
        outcome = await handle.outcome()
        assert outcome.status in (NotificationStatus.delivered, NotificationStatus.partially_delivered)
        assert outcome.channels[ChannelName.email].status == "delivered"
        history = await plain.get_workflow_handle(handle.workflow_id).fetch_history()
        yield Encrypted(client, plain, settings, handle.workflow_id, notification, history)


async def test_raw_history_holds_no_personal_data(encrypted: Encrypted) -> None:
    raw = encrypted.history.to_json()
    text = clear_text(raw)
    for secret in SECRETS:
        assert secret not in text, "personal data in the raw history"
    assert "ada.lovelace" not in text and "4155550123" not in text
    # Failures are encoded too: their messages and stack traces sit in an encrypted attribute.
    found = failures(json.loads(raw))
    assert found, "the push attempt failed, so the history holds a failure"
    assert all(f["message"] == "Encoded failure" and not f.get("stackTrace") for f in found)


async def test_with_the_codec_the_history_decodes_to_the_original(encrypted: Encrypted) -> None:
    started = encrypted.history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encryption-key-id"] == b"k1"
    [request] = await encrypted.client.data_converter.decode(started.input.payloads, [NotificationRequest])
    assert request.notification == encrypted.notification

    outcome = await encrypted.client.get_workflow_handle(encrypted.workflow_id).result()
    assert outcome["status"] in ("delivered", "partially_delivered")
    # Without the key, nobody reads it, and the error says which key is missing.
    with pytest.raises(Exception, match="binary/encrypted"):
        await encrypted.plain.get_workflow_handle(encrypted.workflow_id).result()
    rotated_too_far = await connect_temporal(
        encrypted.settings.changed(codec_keys=SecretStr(CodecKey("k2", bytes(32)).entry()))
    )
    with pytest.raises(UnknownCodecKey, match="payload encrypted with key k1, which HERALD_CODEC_KEYS doesn't hold"):
        await rotated_too_far.get_workflow_handle(encrypted.workflow_id).result()


async def test_temporal_cli_reads_the_history_through_the_codec_endpoint(encrypted: Encrypted) -> None:
    """`temporal workflow show --codec-endpoint http://<api>/codec --codec-auth 'Bearer <admin key>'`."""
    async with open_runtime(encrypted.settings) as runtime:
        app = create_app(encrypted.settings, store=runtime.store)
        server, task, port = await start_fake(app)
        try:
            # Auth is on (as under `herald api`): the CLI passes the admin key, as the docs tell operators to.
            shown, error = await show_history(encrypted, f"http://127.0.0.1:{port}/codec", f"Bearer {ADMIN_KEY}")
        finally:
            server.should_exit = True
            await task
    assert shown, error
    decoded = clear_text(shown)
    for secret in SECRETS:
        assert secret in decoded, "the codec endpoint decodes what the worker encrypted"


async def show_history(encrypted: Encrypted, endpoint: str, auth: str) -> tuple[str, str]:
    process = await asyncio.create_subprocess_exec(
        temporal_binary(),
        "workflow",
        "show",
        "--workflow-id",
        encrypted.workflow_id,
        "--address",
        encrypted.settings.temporal_address,
        "--namespace",
        encrypted.settings.temporal.namespace or "default",
        "--codec-endpoint",
        endpoint,
        "--codec-auth",
        auth,
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(encrypted.settings.store.home)},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return out.decode() if process.returncode == 0 else "", err.decode()
