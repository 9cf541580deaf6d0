"""Workflow and activity contracts: delivery policy, requests, attempts, outcomes, digests."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from herald.models.answers import Action, Answer, RefusedAnswer
from herald.models.common import ChannelName, ChannelStatus, NotificationStatus, OneField, Priority
from herald.models.groups import GroupDecision, MemberOutcome
from herald.models.notification import AgentNotification
from herald.models.oncall import EscalationLink, EscalationOutcome
from herald.models.resolve import Resolution


class RetrySettings(BaseModel):
    """Per-channel retry schedule: about 30 s, 2 min, 10 min by default."""

    initial_interval_seconds: float = Field(default=30.0, gt=0)
    backoff_coefficient: float = Field(default=4.0, ge=1)
    maximum_interval_seconds: float = Field(default=600.0, gt=0)
    maximum_retries: int = Field(default=3, ge=0)


DEFAULT_FALLBACK_ORDER = [ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook]


class DeliveryPolicy(BaseModel):
    """The tunable parts of a notification's life, fixed at start so a running workflow never changes."""

    dedup_window_seconds: int = Field(default=300, ge=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    fallback_order: list[ChannelName] = Field(default_factory=lambda: list(DEFAULT_FALLBACK_ORDER))
    send_timeout_seconds: float = Field(default=30.0, gt=0)
    critical_confirmations: int = Field(default=2, ge=1)
    # A question without respond_by takes answers this long after it was created, then ends `expired`.
    answer_window_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)


class NotificationRequest(BaseModel):
    """The input of NotificationWorkflow."""

    notification: AgentNotification
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    # A digest email itself: sent as it is, never digested again (quiet hours still hold it).
    is_digest: bool = False
    # A group's one message (workflows/group.py): its members passed the silences, the digest and the throttle
    # already, so it is not checked, digested or counted again; quiet hours still hold it.
    is_group: bool = False
    # A member's notification of a group notification (herald/domain/teams.py): the group's workflow, which it tells
    # its answer (a question) and which tells it the group's decision.
    team: TeamLink | None = None
    # A child of an escalation (herald/models/oncall.py): it tells the escalating workflow of its first ack or answer.
    escalation: EscalationLink | None = Field(default=None, exclude_if=lambda value: value is None)


class TeamLink(BaseModel):
    """The group notification a member's notification belongs to."""

    workflow_id: str
    group: str


class DedupCheck(BaseModel):
    key: str
    notification_id: str
    window_seconds: int


class DedupResult(BaseModel):
    duplicate: bool
    owner_notification_id: str


class PreferenceQuery(BaseModel):
    """What the preference activity routes. Without `priority` (histories recorded before quiet hours and
    digests) the answer is the merged on/off switches alone: no minimum priority, no hold, no digest."""

    user_id: str
    agent_id: str
    # None (and in histories recorded before quiet hours and digests): switches only, nothing held or digested.
    priority: Priority | None = None
    channels: list[ChannelName] | None = Field(default=None, description="the requested channels (unset: all)")
    # The rule that fired the notification, if one did: a user's snooze of that rule (or, without one, of the
    # agent) mutes it. Unset in histories recorded before snoozes, which never had one.
    rule: str | None = None
    # A question: never throttled (it is never digested, and its answer is wanted now), nor counted.
    asks: bool = False
    # Which notification it is: the throttle's claim of a slot is kept per notification, so a retried activity
    # claims nothing twice. Unset in histories recorded before throttling (nothing is claimed for them).
    notification_id: str | None = None


class EnabledChannels(BaseModel):
    """How one notification is routed for its user: the channels it may use, and whether it waits or is digested.

    (The name predates quiet hours and digests: recorded histories carry `enabled` alone, which still decodes.)
    """

    enabled: dict[ChannelName, bool]
    hold_until: datetime | None = Field(default=None, description="quiet hours: send when they end")
    digest: bool = Field(default=False, description="goes to the user's digest instead of being sent now")
    snoozed_until: datetime | None = Field(default=None, description="the user snoozed its rule or agent until then")
    # Throttling (max_per_hour): over the agent's limit, or every planned channel over its own, it is not sent now
    # (`digest` too when the user has a digest; else one "N more" message at `throttle_until`, the hour's end).
    throttled: bool = Field(default=False, description="over a max_per_hour: not sent now")
    throttled_channels: list[ChannelName] = Field(
        default_factory=list, description="requested channels left out (disabled) for being over their max_per_hour"
    )
    throttle_until: datetime | None = Field(default=None, description="the end of the throttle's hour")
    # A resolve of it is told by a short email and SMS where it reached those (the user's `notify_resolved`);
    # recorded routes from before it decode as False.
    notify_resolved: bool = False


class DigestItem(BaseModel):
    """One notification waiting in `digest/<user_id>`."""

    notification_id: str
    agent_id: str
    title: str
    body: str = ""
    priority: Priority
    created_at: datetime


class DigestEnqueue(BaseModel):
    """A notification going to its user's digest (signal-with-start of `digest/<user_id>`)."""

    user_id: str
    item: DigestItem
    policy: DeliveryPolicy


class ThrottledItem(BaseModel):
    """A notification over its agent's max_per_hour, for a user without a digest: counted into one "N more"
    message at the end of its hour (`until`) by `throttle/<user_id>/<agent_id>`."""

    item: DigestItem
    until: datetime


class ThrottleEnqueue(BaseModel):
    """A throttled notification handed to its user and agent's summary workflow (signal-with-start)."""

    user_id: str
    agent_id: str
    item: ThrottledItem
    policy: DeliveryPolicy


class ThrottleStart(BaseModel):
    """How `throttle/<user_id>/<agent_id>` starts: for whom, and what it holds (carried across continue-as-new)."""

    user_id: str
    agent_id: str
    policy: DeliveryPolicy = Field(default_factory=lambda: DeliveryPolicy())
    items: list[ThrottledItem] = Field(default_factory=list)


class GroupMember(BaseModel):
    """A notification waiting in its group (`group/<user_id>/<agent_id>/<group_key>`) for the group's one message."""

    item: DigestItem
    channels: list[ChannelName]
    group_wait_seconds: int
    group_interval_seconds: int
    arrived_at: datetime | None = None  # when the group took it (set by the group workflow)


class GroupEnqueue(BaseModel):
    """A grouped notification handed to its group's workflow (signal-with-start)."""

    user_id: str
    agent_id: str
    group_key: str
    member: GroupMember
    policy: DeliveryPolicy


class GroupStart(BaseModel):
    """How `group/<user_id>/<agent_id>/<group_key>` starts, and what it carries across continue-as-new: the members
    not yet sent and when its last message went."""

    user_id: str
    agent_id: str
    group_key: str
    policy: DeliveryPolicy = Field(default_factory=lambda: DeliveryPolicy())
    members: list[GroupMember] = Field(default_factory=list)
    last_sent_at: datetime | None = None
    last_interval_seconds: int | None = None
    # The members already sent (the latest, bounded): a retried hand-over of one of them adds nothing.
    sent_ids: list[str] = Field(default_factory=list)


class GroupDelivery(BaseModel):
    """The group's message that carried a grouped notification: what became of it is the member's delivery."""

    notification_id: str = Field(description="the group's message (a notification of its own)")
    status: NotificationStatus = Field(description="the message's final status")
    size: int = Field(description="how many notifications the message carried")


class GroupRecord(BaseModel):
    """Record a sent group message on each member's outcome: the message and its channels."""

    group_id: str
    notification_ids: list[str]
    delivery: GroupDelivery
    channels: dict[ChannelName, ChannelResult] = Field(default_factory=dict)


class DigestSchedule(BaseModel):
    user_id: str
    after: datetime


class DigestBoundary(OneField):
    """When the user's next digest goes out; None when digests are off (what is held is sent now)."""

    at: datetime | None


class DigestFlush(BaseModel):
    """What a digest's `flush` sent: the digest notification's id, None when nothing was pending."""

    digest_id: str | None = None


class OutcomeQuery(OneField):
    """Which finished notification's recorded outcome to read (`get_outcome`)."""

    notification_id: str


class DigestRecord(BaseModel):
    """Which digest notification carried which notifications."""

    digest_id: str
    notification_ids: list[str]


class DigestStart(BaseModel):
    """How `digest/<user_id>` starts: for whom, and what it already holds (carried across continue-as-new)."""

    user_id: str
    items: list[DigestItem] = Field(default_factory=list)
    sent: int = Field(default=0, description="digests sent so far: numbers the next digest's id")
    policy: DeliveryPolicy = Field(default_factory=lambda: DeliveryPolicy())
    due: datetime | None = Field(
        default=None, description="the boundary a run continued mid-period still waits for (its items are pending)"
    )
    items_per_run: int = Field(
        default=2000, ge=1, description="continue as new mid-period after this many items arrived in one run"
    )


class DeliveryRequest(BaseModel):
    notification: AgentNotification
    channel: ChannelName
    workflow_id: str
    # The number of this activity's first attempt: 2 when a local attempt came before it.
    first_attempt: int = Field(default=1, ge=1)
    # The short `Resolved: <title>` message of a resolved notification (announce_resolved): a key of its own, so the
    # delivery log sends it once and keeps it apart from the notification's own delivery on that channel.
    resolved: bool = False

    @property
    def idempotency_key(self) -> str:
        key = f"{self.workflow_id}/{self.channel.value}"
        return f"{key}/resolved" if self.resolved else key


class DeliveryReceipt(BaseModel):
    channel: ChannelName
    attempt: int
    provider_message_id: str | None = None
    already_delivered: bool = False


class DeliveryFailure(BaseModel):
    """What a failed delivery attempt tells the workflow beside its error: the details of its ApplicationError."""

    attempt: int = 0  # which try failed: the workflow reports how many tries a channel took
    # A local attempt's provider Retry-After (seconds), for the workflow's own timer before the durable retries.
    retry_after: float | None = None


class DeliveryAttempt(BaseModel):
    """One row of the delivery log: one try of one channel for one notification."""

    notification_id: str
    workflow_id: str
    channel: ChannelName
    attempt: int
    idempotency_key: str
    result: ChannelStatus
    error_type: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    started_at: datetime
    finished_at: datetime
    # What the provider reported later (Twilio: delivered, undelivered, failed), if it reports at all.
    provider_status: str | None = None
    provider_error_code: str | None = None


class ChannelResult(BaseModel):
    """Where one channel stands for one notification."""

    channel: ChannelName
    status: ChannelStatus = ChannelStatus.pending
    attempt_count: int = 0
    error_type: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    fallback_for: ChannelName | None = None
    escalation: bool = False


class NotificationOutcome(BaseModel):
    """The live state (from the `status` query) and the final result of a notification."""

    notification_id: str
    workflow_id: str
    agent_id: str
    user_id: str
    priority: Priority
    status: NotificationStatus = NotificationStatus.pending
    channels: dict[ChannelName, ChannelResult] = Field(default_factory=dict)
    duplicate_of: str | None = None
    ops_alert: str | None = None
    held_until: datetime | None = Field(default=None, description="quiet hours held it until then")
    digest_id: str | None = Field(default=None, description="the digest notification that carried it")
    # Questions (notifications with actions): the deadline, the answer, an ack, and answers refused after the first.
    actions: list[Action] = Field(default_factory=list, description="the choices a question offers")
    respond_by: datetime | None = Field(default=None, description="a question takes answers until then")
    answer: Answer | None = Field(default=None, description="the person's answer to a question (the first valid one)")
    acknowledged: Answer | None = Field(default=None, description="the first ack or snooze: it stops escalation")
    refused_answers: list[RefusedAnswer] = Field(default_factory=list, description="answers after the first, refused")
    rule: str | None = Field(default=None, description="the rule that fired it, if any (what a snooze mutes)")
    snoozed_until: datetime | None = Field(default=None, description="not sent: the user snoozed its rule or agent")
    silence_id: str | None = Field(default=None, description="not sent: the silence that matched it (status silenced)")
    resolved: Resolution | None = Field(default=None, description="who resolved it and when (status `resolved`)")
    escalation: EscalationOutcome | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="an escalated notification: each step (when, who was notified) and who acked (by, channel, at)",
    )
    taken_by: Answer | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="a step's notification: the ack on another one that stopped the escalation",
    )
    throttled_channels: list[ChannelName] = Field(
        default_factory=list, description="channels left out of its plan: over their max_per_hour this hour"
    )
    group_id: str | None = Field(
        default=None, description="status grouped: the group's workflow (group/<user>/<agent>/<key>) that sends it"
    )
    group_delivery: GroupDelivery | None = Field(
        default=None, description="status grouped, once sent: the group's message that carried it, and its status"
    )
    # A notification to a group (`group`): its user_id is `group:<name>`, and each member's notification is its own.
    group: str | None = Field(default=None, description="the group it was sent to (user_id is then group:<name>)")
    members: dict[str, MemberOutcome] = Field(
        default_factory=dict, description="a group notification: each member's notification, status and channels"
    )
    answers: list[Answer] = Field(
        default_factory=list, description="a question to a group: every member's answer (who, where, what, when)"
    )
    decision: GroupDecision | None = Field(
        default=None, description="a question to a group: what decided it, who chose it, and what was said"
    )
    group_error: str | None = Field(default=None, description="a group notification that failed: why")

    @property
    def delivered_channels(self) -> list[ChannelName]:
        return [c for c, r in self.channels.items() if r.status is ChannelStatus.delivered]

    @model_validator(mode="after")
    def _keys_match(self) -> NotificationOutcome:
        for channel, result in self.channels.items():
            if result.channel is not channel:
                raise ValueError(f"channels.{channel.value} holds a result for {result.channel.value}")
        return self


class OpsAlert(BaseModel):
    """Something operators must look at, e.g. a critical alert nobody confirmed on two channels."""

    notification_id: str
    kind: str
    message: str


class EndedNotification(BaseModel):
    """What resolving a notification whose workflow has ended reads from the store (`load_ended`): its recorded
    outcome, its title (the kept content; empty when none was kept), and whether the user's `notify_resolved` tells
    its resolve by email and SMS (the preference as it is now, for its agent and priority)."""

    outcome: NotificationOutcome
    title: str = ""
    notify_resolved: bool = False


class ResolveNotifications(BaseModel):
    """The monitor's `resolve_notifications` activity: resolve these notification workflows (a rule with `resolve:
    true` cleared by an event), as `by` (`rule:<name>`)."""

    workflow_ids: list[str]
    by: str = Field(max_length=200)
    # The monitor's: the retries and send timeout of what tells a notification that had ended delivered of its
    # resolve (ResolveEndedWorkflow). Absent in runs recorded before it: the defaults.
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class ResolveEnded(BaseModel):
    """ResolveEndedWorkflow's input (`resolve/<notification_id>`): resolve a notification whose workflow has ended
    delivered, as `by`; `policy` gives the retry schedule and send timeout of the sends that tell of it."""

    notification_id: str
    by: str = Field(max_length=200)
    policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
