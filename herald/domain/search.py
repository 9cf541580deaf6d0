"""What ops see of a notification in the Temporal UI: search attributes, summaries, current details.

Search attributes are indexed in plain text by the server (no payload codec touches them), so they carry
ids, the priority, the status and channel names only, never a title, body or address. Summaries and
current details may name the title: the SDK encodes them with the payload codec like any other payload.
Pure functions; the workflows and the client call them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from herald.domain.resolve import resolve_key
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    NotificationOutcome,
    NotificationStatus,
)

AGENT_ID = SearchAttributeKey.for_keyword("HeraldAgentId")
USER_ID = SearchAttributeKey.for_keyword("HeraldUserId")
PRIORITY = SearchAttributeKey.for_keyword("HeraldPriority")
STATUS = SearchAttributeKey.for_keyword("HeraldStatus")
CHANNELS = SearchAttributeKey.for_keyword_list("HeraldChannels")
# A hash of (agent, dedup_key) (herald.domain.resolve.resolve_key): how a resolve finds the open notifications.
RESOLVE_KEY = SearchAttributeKey.for_keyword("HeraldResolveKey")

SEARCH_ATTRIBUTE_KEYS: tuple[SearchAttributeKey[str] | SearchAttributeKey[Sequence[str]], ...] = (
    AGENT_ID,
    USER_ID,
    PRIORITY,
    STATUS,
    CHANNELS,
    RESOLVE_KEY,
)

_CLI_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}

# `temporal server start-dev --search-attribute Name=Type`: what `herald dev` registers.
SERVER_REGISTRATIONS: dict[str, str] = {key.name: _CLI_TYPES[key.indexed_value_type] for key in SEARCH_ATTRIBUTE_KEYS}

# The UI shows at most 200 bytes of a workflow's static summary.
SUMMARY_MAX_BYTES = 200


def notification_attributes(notification: AgentNotification) -> TypedSearchAttributes:
    """What a notification workflow starts with: who sent it, to whom, how urgent, and `pending`."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(AGENT_ID, notification.agent_id),
            SearchAttributePair(USER_ID, notification.recipient),
            SearchAttributePair(PRIORITY, notification.priority.value),
            SearchAttributePair(STATUS, NotificationStatus.pending.value),
        ]
    )


def resolve_attributes(notification: AgentNotification) -> TypedSearchAttributes:
    """What a notification with a dedup_key is found by when its agent resolves that key (none without one). A
    group notification has none: its members' notifications carry the key and are resolved."""
    if notification.dedup_key is None or notification.group is not None:
        return TypedSearchAttributes([])
    key = resolve_key(notification.agent_id, notification.dedup_key)
    return TypedSearchAttributes([SearchAttributePair(RESOLVE_KEY, key)])


def start_attributes(notification: AgentNotification) -> TypedSearchAttributes:
    """Everything a notification workflow is started with: `notification_attributes` and `resolve_attributes`."""
    return TypedSearchAttributes([*notification_attributes(notification), *resolve_attributes(notification)])


def monitor_attributes(agent_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(AGENT_ID, agent_id)])


def heartbeat_attributes(agent_id: str, user_id: str) -> TypedSearchAttributes:
    """A heartbeat's agent (GET /v1/heartbeats lists by it) and the person a miss notifies."""
    return TypedSearchAttributes([SearchAttributePair(AGENT_ID, agent_id), SearchAttributePair(USER_ID, user_id)])


def digest_attributes(user_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(USER_ID, user_id)])


def throttle_attributes(user_id: str, agent_id: str) -> TypedSearchAttributes:
    """`throttle/<user_id>/<agent_id>`: findable by the user and by the agent."""
    return TypedSearchAttributes([SearchAttributePair(AGENT_ID, agent_id), SearchAttributePair(USER_ID, user_id)])


def group_attributes(user_id: str, agent_id: str) -> TypedSearchAttributes:
    """`group/<user_id>/<agent_id>/<group_key>`: findable by the user and by the agent."""
    return TypedSearchAttributes([SearchAttributePair(AGENT_ID, agent_id), SearchAttributePair(USER_ID, user_id)])


def missing_updates(current: TypedSearchAttributes, wanted: TypedSearchAttributes) -> list[SearchAttributeUpdate[Any]]:
    """The upserts that give a workflow the attributes it was not started with (none when it was).

    Whoever starts a workflow should set them at start; this covers starters that don't (an older client,
    the CLI, a test), at the cost of one upsert command.
    """
    updates: list[SearchAttributeUpdate[Any]] = []
    for pair in wanted:
        if current.get(pair.key) is None:
            updates.append(pair.key.value_set(pair.value))
    return updates


def status_update(status: NotificationStatus) -> list[SearchAttributeUpdate[Any]]:
    return [STATUS.value_set(status.value)]


def channels_update(channels: Iterable[ChannelName]) -> list[SearchAttributeUpdate[Any]]:
    """The channels used so far, in a fixed order (a set's order varies between processes)."""
    used = set(channels)
    return [CHANNELS.value_set([c.value for c in ChannelName if c in used])]


def _fit(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - len("…".encode())].decode(errors="ignore") + "…"


def notification_summary(notification: AgentNotification) -> str:
    """One line for the workflow list: `high: error rate 7% on support-agent -> admin-1`."""
    title = " ".join(notification.title.split())
    n = notification
    return _fit(f"{n.priority.value}: {title} on {n.agent_id} -> {n.recipient}", SUMMARY_MAX_BYTES)


def delivery_summary(channel: ChannelName, fallback_for: ChannelName | None, escalation: bool) -> str:
    """The delivery activity's line in the history: `deliver via email, fallback for push`."""
    if fallback_for is not None:
        return f"deliver via {channel.value}, fallback for {fallback_for.value}"
    return f"deliver via {channel.value}, escalation" if escalation else f"deliver via {channel.value}"


def _attempts(count: int) -> str:
    return f" ({count} attempt{'' if count == 1 else 's'})" if count > 0 else ""


def channel_line(result: ChannelResult, replaced_by: ChannelName | None = None) -> str:
    """`email: delivered (2 attempts)`, `push: failed RecipientNotConnected -> email`. Error types only:
    an error message may quote what the provider said about the recipient."""
    if result.status is ChannelStatus.pending:
        line = f"{result.channel.value}: sending"
    elif result.status is ChannelStatus.delivered:
        line = f"{result.channel.value}: delivered{_attempts(result.attempt_count)}"
    elif result.status is ChannelStatus.stopped:
        line = f"{result.channel.value}: stopped by the resolve{_attempts(result.attempt_count)}"
    else:
        line = f"{result.channel.value}: failed {result.error_type or 'error'}{_attempts(result.attempt_count)}"
        if replaced_by is not None:
            line += f" -> {replaced_by.value}"
    if result.escalation:
        line += ", escalation"
    return line


def current_details(outcome: NotificationOutcome) -> str:
    """The notification's state as a short markdown list: its status, then one line per channel tried."""
    lines = [f"**{outcome.status.value}**"]
    if outcome.duplicate_of is not None:
        lines.append(f"duplicate of {outcome.duplicate_of}")
    if outcome.silence_id is not None:
        lines.append(f"silenced by {outcome.silence_id}")
    if outcome.resolved is not None:
        lines.append(f"resolved by {outcome.resolved.by} at {outcome.resolved.at.isoformat(timespec='seconds')}")
    if outcome.status is NotificationStatus.throttled:
        carried = f": carried by {outcome.digest_id}" if outcome.digest_id else ""
        lines.append(f"over max_per_hour from {outcome.agent_id}{carried}")
    if outcome.status is NotificationStatus.grouped:
        sent = outcome.group_delivery
        carried = f": carried by {sent.notification_id} ({sent.status.value})" if sent is not None else ""
        lines.append(f"grouped in {outcome.group_id}{carried}")
    if outcome.throttled_channels:
        names = ", ".join(c.value for c in outcome.throttled_channels)
        lines.append(f"left out, over their max_per_hour: {names}")
    if outcome.held_until is not None and outcome.status is NotificationStatus.pending and not outcome.channels:
        lines.append(f"held for quiet hours until {outcome.held_until.isoformat(timespec='minutes')}")
    replaced_by = {r.fallback_for: c for c, r in outcome.channels.items() if r.fallback_for is not None}
    lines += [f"- {channel_line(r, replaced_by.get(c))}" for c, r in outcome.channels.items()]
    return "\n".join(lines)
