"""Logging: one JSON object per line (time, level, logger, message, and the notification and workflow when known).

The ids come from where the line was logged: inside an activity or a workflow, from Temporal's context
(`activity.info()`, `workflow.info()`); in the API, from a context variable the request sets (`bind`).
Messages never carry personal data (addresses, numbers, bodies, tokens): they name fields and problems.
Tracebacks keep file, line and function but drop the exception's message (a provider library may have
filled it with an address) and the source lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from temporalio import activity, workflow

LogFormat = Literal["json", "text"]
CONTEXT_FIELDS = ("notification_id", "workflow_id")
NOTIFICATION_PREFIX = "notification/"

# The current request's ids, set by the API. A dict shared by the request's tasks, so an id bound deep in
# a route is seen by the request log line written after it.
_context: ContextVar[dict[str, str] | None] = ContextVar("herald_log_context", default=None)


@contextlib.contextmanager
def log_scope() -> Iterator[dict[str, str]]:
    """A fresh context for one unit of work (an HTTP request); `bind` fills it."""
    token = _context.set({})
    try:
        yield _context.get() or {}
    finally:
        _context.reset(token)


def bind(*, notification_id: str | None = None, workflow_id: str | None = None) -> None:
    """Name the notification the current request is about; a no-op outside a `log_scope`."""
    scope = _context.get()
    if scope is None:
        return
    if notification_id is not None:
        scope["notification_id"] = notification_id
        scope.setdefault("workflow_id", NOTIFICATION_PREFIX + notification_id)
    if workflow_id is not None:
        scope["workflow_id"] = workflow_id


def ids_from_workflow_id(workflow_id: str) -> dict[str, str]:
    """`notification/<id>` names its notification; other workflows (digest, monitor, retention) only themselves."""
    ids = {"workflow_id": workflow_id}
    if workflow_id.startswith(NOTIFICATION_PREFIX):
        ids["notification_id"] = workflow_id.removeprefix(NOTIFICATION_PREFIX)
    return ids


def current_ids() -> dict[str, str]:
    """The notification and workflow the running code works for, from Temporal's context or the request's."""
    if activity.in_activity():
        workflow_id = activity.info().workflow_id
        if workflow_id:
            return ids_from_workflow_id(workflow_id)
    elif workflow.in_workflow():
        return ids_from_workflow_id(workflow.info().workflow_id)
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Puts `notification_id` and `workflow_id` on every record that passes a handler (unless already set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_ids().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


def bare_traceback(kind: type[BaseException], tb: TracebackType | None) -> str:
    """Where an exception came from (file, line, function) and its type: no message, no source lines."""
    frames = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n' for f in traceback.extract_tb(tb))
    return f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key in ("method", "route", "status", "duration_ms"):  # the API's request lines
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            entry["traceback"] = bare_traceback(record.exc_info[0], record.exc_info[2])
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for `herald dev`; the workflow id in brackets when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        workflow_id = getattr(record, "workflow_id", None)
        return f"{line} [{workflow_id}]" if workflow_id else line

    def formatException(self, ei: Any) -> str:
        return bare_traceback(ei[0], ei[2])


def make_handler(log_format: LogFormat, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(log_format: LogFormat, level: str | int = "INFO") -> None:
    """Replace the root logger's handlers with one to stderr in `log_format`; uvicorn's loggers propagate to it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The access log would print raw paths and query strings (`?token=` on /v1/ws); the API logs its own.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request's full URL at INFO, and a webhook URL, a Web Push endpoint or an agent's callback
    # can carry a token in its path: the HTTP clients log warnings only (Herald logs each attempt itself).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
