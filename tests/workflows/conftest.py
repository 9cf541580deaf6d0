"""The answers stack (a worker, the API and fake SendGrid and Twilio; tests/workflows/test_answers.py builds it),
shared by the modules that answer questions through it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from starter import HeraldClient
from tests.conftest import FAST_POLICY
from tests.workflows.test_answers import Stack, answer_settings, fake_providers, running_worker, serve_api


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    task_queue = f"answers-{uuid.uuid4().hex[:12]}"
    async with fake_providers() as (sendgrid, twilio):
        settings = answer_settings(tmp_path / "herald", sendgrid, twilio)
        async with running_worker(temporal_env, settings, task_queue) as runtime:
            client = HeraldClient(temporal_env.client, task_queue, FAST_POLICY, store=runtime.store)
            async with (
                serve_api(settings, client, runtime) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api,
            ):
                yield Stack(client, runtime.store, settings, sendgrid, twilio, api, port, task_queue)
