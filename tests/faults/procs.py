"""Real processes a fault test can kill: the Temporal dev server, `herald worker`, `herald api`, PostgreSQL, Redis.

Each runs on free loopback ports of its own and logs to a file under the test's tmp_path, so a test can stop
or SIGKILL it without touching the PostgreSQL (5432) and Redis (6379) other tests share, and a failure shows
what the process said. Nothing here blocks the event loop: the loopback fakes run on the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from herald.config import temporal_binary
from herald.domain.search import SERVER_REGISTRATIONS
from tests.conftest import WEBHOOK_SECRET
from tests.starter.cli import HERALD, clean_env


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def port_open(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_for_port(port: int, what: str, log: Path | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await port_open(port):
            return
        await asyncio.sleep(0.05)
    tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{what} did not listen on {port} within {timeout:g}s\n{tail}")


async def run(*command: str, timeout: float = 120, check: bool = True) -> str:
    """Run a short command to its end without blocking the loop; its output, or an error naming it."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    text = out.decode(errors="replace")
    if check and process.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {process.returncode}:\n{text[-2000:]}")
    return text


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the test process dies, so a killed run leaves no server behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Process:
    """One long-running child with its output in a log file; start it again after a kill."""

    def __init__(self, name: str, command: list[str], log: Path, env: Mapping[str, str] | None = None) -> None:
        self.name, self.command, self.log, self.env = name, command, log, dict(env) if env is not None else None
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}: {self.name}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, the way a crash or the OOM killer ends a process."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            await self.process.wait()

    async def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL when it takes longer than `timeout`."""
        if not self.running:
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()
            return None

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


class TemporalServer(Process):
    """A Temporal dev server of the test's own, on its own SQLite file: kill it and start it on the same file."""

    def __init__(self, directory: Path, *, persistent: bool = True) -> None:
        """`persistent=False` keeps the server's state in memory: no fsync per transaction, for a soak on a
        busy disk (a restart then loses everything, so only the crash test needs the file)."""
        self.port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        database = ["--db-filename", str(directory / "temporal.db")] if persistent else []
        command = [
            temporal_binary(),
            "server",
            "start-dev",
            *database,
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--metrics-port",
            str(self.metrics_port),
            "--headless",
            "--log-level",
            "error",
        ]
        for name, kind in SERVER_REGISTRATIONS.items():
            command += ["--search-attribute", f"{name}={kind}"]
        super().__init__("temporal", command, directory / "temporal.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        await super().start()
        await wait_for_port(self.port, "the Temporal dev server", self.log)


def herald_env(home: Path, temporal_address: str, task_queue: str, **values: str) -> dict[str, str]:
    """The environment of a `herald worker` or `herald api` child: nothing inherited from Herald's own."""
    return clean_env(
        HERALD_HOME=str(home),
        TEMPORAL_ADDRESS=temporal_address,
        HERALD_TASK_QUEUE=task_queue,
        HERALD_RETENTION_SCHEDULE_ID=f"retention-{task_queue}",
        HERALD_LOG_LEVEL="WARNING",
        **values,
    )


def webhook_worker_env(home: Path, temporal_address: str, task_queue: str, database_url: str) -> dict[str, str]:
    """A `herald worker` child on the test's store that signs webhooks with the tests' secret and may post to the
    loopback fakes."""
    return herald_env(
        home,
        temporal_address,
        task_queue,
        HERALD_DATABASE_URL=database_url,
        HERALD_WEBHOOK_SECRET=WEBHOOK_SECRET,
        HERALD_ALLOW_PRIVATE_WEBHOOKS="true",
    )


def herald_worker(log: Path, env: Mapping[str, str]) -> Process:
    return Process("herald worker", [HERALD, "worker"], log, env)


class HeraldApi(Process):
    """`herald api` on a free port; `start` returns once it answers."""

    def __init__(self, log: Path, env: Mapping[str, str]) -> None:
        self.port = free_port()
        super().__init__("herald api", [HERALD, "api", "--port", str(self.port)], log, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await super().start()
        await wait_for_port(self.port, "herald api", self.log)


def need(binary: str) -> str:
    """The path of a server binary; skipped where it is missing, but a failure under CI (which must have it)."""
    found = shutil.which(binary)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is missing and CI is set")
        pytest.skip(f"{binary} is not installed")
    return found


class RedisServer(Process):
    """`redis-server` on a free port with no persistence: stopping it is an outage, not a pause."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        command = [need("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(directory)]
        super().__init__("redis", command, directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        await super().start()
        await wait_for_port(self.port, "redis-server", self.log)


def _postgres_version() -> str | None:
    root = Path("/usr/lib/postgresql")
    versions = (
        sorted((p.name for p in root.iterdir() if (p / "bin" / "postgres").exists()), key=float)
        if root.exists()
        else []
    )
    return versions[-1] if versions else None


class PostgresCluster:
    """A PostgreSQL cluster of the test's own, on a free port, with trust auth on loopback.

    As root (CI): `pg_createcluster` and `pg_ctlcluster`, which run the server as the postgres user;
    otherwise `initdb` and `pg_ctl` in the test's directory as the current user. `drop` removes it either way.
    """

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        version = _postgres_version()
        self.version = version or ""
        # Debian's layout (/usr/lib/postgresql/<version>/bin), else whatever pg_ctl is on PATH.
        self.bin = Path(f"/usr/lib/postgresql/{version}/bin") if version else Path(need("pg_ctl")).parent
        self.managed = bool(version) and os.geteuid() == 0 and shutil.which("pg_createcluster") is not None
        self.name = f"herald_faults_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.data = directory / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def create(self) -> None:
        if self.managed:
            await run("pg_createcluster", self.version, self.name, "--port", str(self.port), "--", "--auth=trust")
        else:
            await run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        await self.start()

    async def start(self) -> None:
        if self.managed:
            await run("pg_ctlcluster", self.version, self.name, "start")
        else:
            options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            await run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.directory / "pg.log"),
                "-w",
                "start",
            )
        await wait_for_port(self.port, "PostgreSQL")

    async def stop(self) -> None:
        """Immediate shutdown: the server drops every connection at once, as a crash does (it recovers on start)."""
        if self.managed:
            await run("pg_ctlcluster", self.version, self.name, "stop", "-m", "immediate")
        else:
            await run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    async def drop(self) -> None:
        if self.managed:
            await run("pg_dropcluster", self.version, self.name, "--stop", check=False)
        else:
            await run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)


async def drop_abandoned_clusters() -> None:
    """Drop the clusters of fault-test runs whose process is gone (a run killed before its cleanup)."""
    if os.geteuid() != 0 or shutil.which("pg_lsclusters") is None:
        return
    for line in (await run("pg_lsclusters", "-h", check=False)).splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[1].startswith("herald_faults_"):
            continue
        pid = int(fields[1].split("_")[2])
        if not Path(f"/proc/{pid}").exists():
            await run("pg_dropcluster", fields[0], fields[1], "--stop", check=False)


@contextlib.asynccontextmanager
async def postgres_cluster(directory: Path) -> AsyncIterator[PostgresCluster]:
    await drop_abandoned_clusters()
    cluster = PostgresCluster(directory)
    try:
        await cluster.create()
        yield cluster
    finally:
        await cluster.drop()


async def eventually(check: object, what: str, timeout: float = 60, interval: float = 0.1) -> None:
    """Wait until `check()` (sync or async) is true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check() if callable(check) else check
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)
