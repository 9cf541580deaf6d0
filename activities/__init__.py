"""Thin Temporal adapters over herald/: each holds its dependencies, none holds a decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from activities.answers import AnswerActivities
from activities.audit import AuditActivities
from activities.chat_conclusion import ChatActivities
from activities.dedup import DedupActivities
from activities.delivery import DeliveryActivities
from activities.digest import DigestActivities
from activities.group import GroupActivities
from activities.heartbeats import HeartbeatActivities, resolve_missed_check_in
from activities.oncall import OnCallActivities
from activities.preferences import PreferenceActivities
from activities.resolve import ResolveActivities
from activities.retention import RetentionActivities
from activities.silences import SilenceActivities
from activities.subscriptions import SubscriptionActivities
from activities.teams import TeamActivities
from activities.throttle import ThrottleActivities
from herald.adapters.channels.base import Channel
from herald.adapters.store import Store
from herald.domain.answers import AnswerLinks
from herald.models import ChannelName
from herald.services.callbacks import AgentCallbacks
from herald.services.chat_conclusion import ChatService
from herald.services.delivery import DeliveryService
from herald.services.resolve import ResolveService
from herald.services.subscriptions import SubscriptionService

__all__ = [
    "AnswerActivities",
    "AuditActivities",
    "ChatActivities",
    "DedupActivities",
    "DeliveryActivities",
    "DigestActivities",
    "GroupActivities",
    "HeartbeatActivities",
    "OnCallActivities",
    "PreferenceActivities",
    "ResolveActivities",
    "RetentionActivities",
    "SilenceActivities",
    "SubscriptionActivities",
    "TeamActivities",
    "ThrottleActivities",
    "build_activities",
]


def build_activities(
    store: Store,
    channels: Mapping[ChannelName, Channel],
    *,
    digest_period_seconds: float | None = None,
    throttle_window_seconds: float = 3600.0,
    answer_links: AnswerLinks | None = None,
    callbacks: AgentCallbacks | None = None,
    subscriptions: SubscriptionService | None = None,
) -> list[Callable[..., Any]]:
    """Every activity a Herald worker registers, bound to one store and one set of channels."""
    dedup = DedupActivities(store)
    digest = DigestActivities(store, digest_period_seconds)
    preferences = PreferenceActivities(store, throttle_window_seconds=throttle_window_seconds)
    delivery_service = DeliveryService(store, channels, answer_links)
    delivery = DeliveryActivities(delivery_service)
    subscribed = SubscriptionActivities(subscriptions)
    audit = AuditActivities(store, subscribed)
    heartbeat = HeartbeatActivities(subscribed)
    retention = RetentionActivities(store)
    answers = AnswerActivities(callbacks)
    chat = ChatActivities(ChatService(store, channels))
    silences = SilenceActivities(store)
    resolve = ResolveActivities(ResolveService(store, channels, delivery_service))
    throttled = ThrottleActivities(store)
    grouped = GroupActivities(store)
    teams = TeamActivities(store)
    oncall = OnCallActivities(store)
    return [
        dedup.check_duplicate,
        preferences.merge_preferences,
        delivery.deliver,
        audit.record_outcome,
        audit.record_ops_alert,
        audit.get_outcome,
        digest.enqueue_digest,
        digest.next_digest_at,
        digest.record_digest,
        retention.purge_expired,
        answers.call_agent,
        chat.conclude_chat,
        silences.check_silences,
        resolve.announce_resolved,
        heartbeat.count_heartbeat_event,
        resolve_missed_check_in,
        throttled.enqueue_throttled,
        resolve.resolve_notifications,
        resolve.load_ended,
        grouped.enqueue_grouped,
        grouped.record_grouped,
        subscribed.post_subscription_event,
        subscribed.mark_subscription,
        teams.group_members,
        oncall.get_policy,
        oncall.resolve_targets,
    ]
