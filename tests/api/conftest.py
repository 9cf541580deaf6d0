"""The API as `herald api` runs it, for the modules that don't build their own `secured`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from tests.api.test_auth import ADMIN_KEY, Secured, assert_no_secrets, issue_all
from tests.conftest import make_settings


@pytest.fixture
async def secured(store: Store, tmp_path: Path) -> AsyncIterator[Secured]:
    """`herald api` settings: auth on, an admin key, a user token for ada and bob, agent keys for two agents; every
    response is searched for the tokens and keys at the end."""
    app = create_app(make_settings(tmp_path, auth=True, admin_key=ADMIN_KEY), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        secured = Secured(api, await issue_all(store), [])
        yield secured
        assert_no_secrets(secured.seen, secured.tokens)
