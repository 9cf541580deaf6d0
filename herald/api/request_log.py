"""Every HTTP request counted, timed and logged by its route template; a bug answered in the error shape."""

from __future__ import annotations

import logging
import os
import time
import traceback

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.adapters.logs import log_scope
from herald.adapters.metrics import HTTP_LATENCY, HTTP_REQUESTS
from herald.api.errors import error_response

request_log = logging.getLogger("herald.api")
# Scraped and probed every few seconds: logged at debug, still counted.
QUIET_ROUTES = frozenset({"/metrics", "/healthz"})
INTERNAL_ERROR = "Herald hit an internal error (logged by its type, without the request's data); try again, and report it if it persists"


class RequestLog:
    """Count, time and log every HTTP request by its route template (`/v1/notifications/{notification_id}`).

    Templates, not paths: ids stay out of metric labels, and query strings (`?token=`) out of the log.
    Each request gets its own log context, so lines logged while answering it name its notification.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_status(message)

        with log_scope():
            try:
                await self.app(scope, receive, send_tracking)
            except Exception as exc:  # a bug: answered in the error shape, logged without its message
                # The message and the traceback's locals may hold what the request carried (an address, a
                # token), so the log names only the error's type and where it was raised.
                where = traceback.extract_tb(exc.__traceback__)[-1]
                request_log.error(
                    "unhandled %s at %s:%d in %s",
                    type(exc).__name__,
                    os.path.basename(where.filename),
                    where.lineno or 0,
                    where.name,
                )
                if started_response:
                    raise
                status = 500
                await error_response(500, "internal_error", INTERNAL_ERROR)(scope, receive, send)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = str(scope.get("method", ""))
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_LATENCY.labels(method, route).observe(elapsed)
                request_log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 1)},
                )
