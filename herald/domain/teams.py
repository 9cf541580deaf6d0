"""A notification to a group (herald/models/groups.py): one notification per member, each a normal single-user
notification of its own (the member's preferences, quiet hours, digest, dedup claim), and the group's outcome made
of theirs. Pure: NotificationWorkflow reads the members (a store step) and starts the children.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from herald.models import NotificationOutcome, NotificationRequest, NotificationStatus
from herald.models.delivery import TeamLink
from herald.models.groups import MemberOutcome

ID_MAX_CHARS = 128

# A group's status is its members' most advanced one, in this order: a question is `answered` once decided.
STATUS_ORDER = (
    NotificationStatus.answered,
    NotificationStatus.confirmed,
    NotificationStatus.delivered,
    NotificationStatus.partially_delivered,
    NotificationStatus.unconfirmed,
    NotificationStatus.grouped,
    NotificationStatus.digested,
    NotificationStatus.throttled,
    NotificationStatus.expired,
    NotificationStatus.resolved,
    NotificationStatus.silenced,
    NotificationStatus.suppressed_duplicate,
    NotificationStatus.no_channel,
    NotificationStatus.failed,
    NotificationStatus.pending,
)


def member_notification_id(notification_id: str, member: str) -> str:
    """`<notification_id>.<member>`, the member's own notification (so `notification/<id>.<member>` its workflow);
    when that is longer than an id may be, the member's part is a hash of it (still one id per member)."""
    plain = f"{notification_id}.{member}"
    if len(plain) <= ID_MAX_CHARS:
        return plain
    digest = hashlib.sha256(member.encode()).hexdigest()[:24]
    return f"{notification_id[: ID_MAX_CHARS - len(digest) - 1]}.{digest}"


def member_request(request: NotificationRequest, member: str, parent_workflow_id: str) -> NotificationRequest:
    """The member's notification: the group's, for `member` alone, under its own id. It calls no agent back (the
    group's notification does, once) and, for a question, tells the group's workflow its answer."""
    n = request.notification
    assert n.group is not None
    child = n.model_copy(
        update={
            "notification_id": member_notification_id(n.notification_id, member),
            "user_id": member,
            "group": None,
            "quorum": "first",
            "callback_url": None,
        }
    )
    return NotificationRequest(
        notification=child,
        policy=request.policy,
        team=TeamLink(workflow_id=parent_workflow_id, group=n.group),
    )


def member_outcome(outcome: NotificationOutcome) -> MemberOutcome:
    return MemberOutcome(
        notification_id=outcome.notification_id,
        status=outcome.status,
        channels=outcome.delivered_channels,
        answer=outcome.answer,
    )


def group_status(members: Mapping[str, MemberOutcome], *, asks: bool, decided: bool) -> NotificationStatus:
    """A group notification's status: a question is `answered` once decided, else `expired` (nobody decided it by
    its deadline) unless none of its members was asked; otherwise the most advanced of the members' statuses
    (delivered if any member's was delivered; `failed` with no member)."""
    if asks and decided:
        return NotificationStatus.answered
    statuses = {m.status for m in members.values()}
    if asks and statuses & {NotificationStatus.answered, NotificationStatus.expired}:
        return NotificationStatus.expired
    for status in STATUS_ORDER:
        if status in statuses and not (asks and status is NotificationStatus.answered):
            return status
    return NotificationStatus.failed
