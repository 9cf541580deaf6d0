"""What routes depend on: the store, the Temporal client, the push hub and the compiled rules."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Path, Request
from temporalio.service import RPCError

from herald.adapters.channels.push import PushHub
from herald.adapters.codec import CodecMismatch
from herald.adapters.store import Store
from herald.api.errors import ApiError
from herald.config import Settings
from herald.models import ID_REGEX
from herald.services.gateway import Connect, Gateway
from herald.services.quota import AgentQuota
from herald.services.rule_cache import RuleCache

log = logging.getLogger("herald.api")

UserId = Annotated[str, Path(pattern=ID_REGEX, description="the user's id")]


class Services:
    """What the routes use, opened by the app's lifespan unless the caller (e.g. `herald dev`) hands them in."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None,
        client: Gateway | None,
        hub: PushHub | None = None,
        *,
        connect: Connect | None = None,
        quota: AgentQuota | None = None,
    ) -> None:
        self.settings, self._store, self._client, self._connect = settings, store, client, connect
        self._rules: RuleCache | None = None
        # Agent keys' token buckets: in Redis when HERALD_REDIS_URL is set (every API process shares them).
        self.quota = quota or AgentQuota.from_settings(settings)
        # Live WebSocket connections of this process; the worker reaches them in-process or through Redis.
        self.hub = hub or PushHub(ack_timeout=settings.push.ack_timeout_seconds, queue_size=settings.push.queue_size)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise ApiError(503, "store_unavailable", "the store is not open yet; retry shortly")
        return self._store

    @property
    def store_if_open(self) -> Store | None:
        """The store, or None before the lifespan opened it (for what may go without: the quota's ops alert)."""
        return self._store

    @property
    def rules(self) -> RuleCache:
        """The compiled rules over the store, built on first use (the store may open after the app is made)."""
        if self._rules is None:
            self._rules = RuleCache(self.store)
        return self._rules

    async def client(self) -> Gateway:
        """The Gateway the app was handed, or the one it connects on first use; 503 when it has neither."""
        if self._client is None:
            if self._connect is None:
                raise ApiError(503, "temporal_unavailable", "this server was started without a Temporal connection")
            try:
                self._client = await self._connect(self.settings)
            except CodecMismatch as exc:
                # The message names key ids, the setting and this server's paths: for the operator's log only.
                log.error("%s", exc)
                raise ApiError(
                    503, "codec_mismatch", "this server's codec keys can't read the workers' payloads; see its log"
                ) from None
            except (RPCError, RuntimeError, OSError) as exc:
                raise ApiError(
                    503, "temporal_unavailable", f"cannot reach Temporal at {self.settings.temporal_address}; retry"
                ) from exc
        return self._client


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in a thread pool, on every request."""
    return services_of(request)


Deps = Annotated[Services, Depends(get_services)]
