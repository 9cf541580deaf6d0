"""Herald's Prometheus metrics, in a registry of their own (so tests and embedders never collide with the global one).

Counting is process-local: the worker counts what its activities did (outcomes, deliveries, digests) and shows
it on HERALD_WORKER_METRICS_PORT; the API counts requests and events and shows them on its `/metrics`. Labels
are small closed sets (status, priority, channel, route template): never personal data, and no ids but one: the
agent quota's counters are per agent (`agent_id`), whose ids the operator chose when issuing the keys.
"""

from __future__ import annotations

import threading
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from herald.models import ChannelName, ChannelStatus, NotificationOutcome

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

NOTIFICATIONS = Counter(
    "herald_notifications",
    "Notifications whose outcome was recorded, by final status and priority.",
    ["status", "priority"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "herald_deliveries",
    "Delivery attempts by channel and result (delivered, failed, or already_delivered when the log said so).",
    ["channel", "result"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "herald_delivery_retries",
    "Delivery attempts after the first one for the same (notification, channel).",
    ["channel"],
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "herald_fallbacks",
    "Channels used as a fallback for another, counted when the outcome is recorded.",
    ["channel", "fallback_for"],
    registry=REGISTRY,
)
DIGEST_SIZE = Histogram(
    "herald_digest_size",
    "Notifications carried by one digest.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
    registry=REGISTRY,
)
GROUP_SIZE = Histogram(
    "herald_group_size",
    "Notifications carried by one group's message (status grouped, group_key).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "herald_delivery_latency_seconds",
    "From a notification's created_at to the end of its delivered attempt, per channel.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400),
    registry=REGISTRY,
)
RETENTION_DELETED = Counter(
    "herald_retention_deleted_rows",
    "Rows deleted by the retention cleanup, by table.",
    ["table"],
    registry=REGISTRY,
)
HEARTBEAT_EVENTS = Counter(
    "herald_heartbeat_events",
    "Heartbeats that missed their check-in (event=missed) and that checked in again after a miss (event=resumed).",
    ["event"],
    registry=REGISTRY,
)
# API side.
RESOLVES = Counter(
    "herald_resolve_requests",
    "Resolve requests answered by the API: `resolved` when they resolved something, else `nothing_open`.",
    ["result"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "herald_http_requests",
    "HTTP requests answered by the API, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "herald_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    registry=REGISTRY,
)
EVENTS_RECEIVED = Counter("herald_events_received", "Agent events accepted by the API.", registry=REGISTRY)
EVENTS_FIRED = Counter(
    "herald_events_fired_notifications", "Notifications started by rules that events fired.", registry=REGISTRY
)
NOTIFICATIONS_ACCEPTED = Counter(
    "herald_api_notifications_accepted", "Notifications started through POST /v1/notifications.", registry=REGISTRY
)
QUOTA_REFUSALS = Counter(
    "herald_agent_quota_refusals",
    "Requests refused because the agent's key was over its quota (429), by agent.",
    ["agent_id"],
    registry=REGISTRY,
)
QUOTA_ALERTS = Counter(
    "herald_agent_quota_alerts",
    "Bursts over an agent's quota: the first refusal after a quiet period, each raising one ops alert.",
    ["agent_id"],
    registry=REGISTRY,
)

HEARTBEAT_PINGS = Counter("herald_heartbeat_pings", "Heartbeat check-ins accepted by the API.", registry=REGISTRY)
HEARTBEAT_CHANGES = Counter(
    "herald_heartbeat_changes",
    "Heartbeats created or changed (action=set) and stopped (action=delete) through the API.",
    ["action"],
    registry=REGISTRY,
)


def count_outcome(outcome: NotificationOutcome) -> None:
    """The final status, and every channel that stood in for another."""
    NOTIFICATIONS.labels(outcome.status.value, outcome.priority.value).inc()
    for channel, result in outcome.channels.items():
        if result.fallback_for is not None:
            FALLBACKS.labels(channel.value, result.fallback_for.value).inc()


def count_attempt(
    channel: ChannelName, attempt: int, result: ChannelStatus, created_at: datetime, finished_at: datetime
) -> None:
    """One attempt; a delivered one also observes the latency since the notification was created."""
    DELIVERIES.labels(channel.value, result.value).inc()
    if attempt > 1:
        RETRIES.labels(channel.value).inc()
    if result is ChannelStatus.delivered:
        DELIVERY_LATENCY.labels(channel.value).observe(max(0.0, (finished_at - created_at).total_seconds()))


def count_already_delivered(channel: ChannelName) -> None:
    DELIVERIES.labels(channel.value, "already_delivered").inc()


def exposition() -> tuple[bytes, str]:
    """The text exposition of Herald's registry and its content type, for a /metrics route."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(port: int, host: str = "127.0.0.1") -> tuple[WSGIServer, threading.Thread]:
    """A /metrics listener in a daemon thread (the worker has no HTTP server of its own); port 0 picks one."""
    return start_http_server(port, addr=host, registry=REGISTRY)
