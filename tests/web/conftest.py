"""Browser tests: Debian's Chromium driven by Playwright, against the real API (uvicorn on loopback) and a real worker.

Chromium comes from `apt-get install chromium` (`make test` installs it); Playwright never downloads a browser.
Without it these tests skip on a developer's machine and fail under CI, where they must run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from herald.api.app import create_app
from herald.services.auth import issue_token
from tests.conftest import Harness, make_settings

CHROMIUM = os.environ.get("HERALD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Where the README's screenshots go when asked (`make screenshots`); otherwise each test's tmp_path.
SCREENSHOTS = os.environ.get("HERALD_SCREENSHOTS")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make test does), or set HERALD_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        try:
            yield launched
        finally:
            await launched.close()


class LiveApi:
    """The API on a fixed loopback port that can be stopped and started again (the page reconnects to it)."""

    def __init__(self, harness: Harness) -> None:
        settings = make_settings(harness.settings.store.home, auth=True)
        # The worker's push hub: its deliveries reach the page's WebSocket in this process.
        self.app = create_app(settings, store=harness.store, client=harness.client, hub=harness.runtime.hub)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        # A bounded shutdown: a WebSocket caught mid-handshake by the stop must not hold the test forever.
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)  # type: ignore[arg-type]
        server = uvicorn.Server(config)
        self._server, self._task = server, asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                await self._task
                raise AssertionError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


@pytest.fixture
async def live_api(herald: Harness) -> AsyncIterator[LiveApi]:
    api = LiveApi(herald)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


@dataclass
class Session:
    """A signed-in page: the user's token, the browser page, and the API it talks to."""

    user_id: str
    token: str
    page: Page
    api: LiveApi
    herald: Harness

    def link(self) -> str:
        return f"{self.api.url}/#token={self.token}"


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport=DESKTOP, locale="en-US", timezone_id="UTC")
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def session(context: BrowserContext, live_api: LiveApi, herald: Harness) -> AsyncIterator[Session]:
    """Ada's token and a fresh page; the test opens the login link itself."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Anything the Content-Security-Policy blocked is a bug in the page (an inline style, a foreign origin).
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    token = await issue_token(herald.store, "user", "ada")
    yield Session("ada", token, page, live_api, herald)
    await page.close()  # before the API stops: no reconnect races its shutdown
    assert errors == [], f"uncaught errors in the page: {errors}"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"
