"""NotificationWorkflow: one notification, from dedup check to a recorded outcome. Orchestration only.

`run` is the table of contents, one method a phase, each handed what it needs and returning what the next one
needs (typed: the dataclasses below): dedup -> silences (one a silence holds ends `silenced`) -> plan (the user's
preferences: digest, quiet hours, the channels) -> deliver on each planned channel concurrently, each with retries
and fallback -> confirm critical (escalate until enough channels confirm, else `unconfirmed` and an ops alert) ->
wait for an answer (a question) -> record. What stays on the instance is what the query, the update and the signals
read: the outcome, the deadline, the joiners, and the run's path (its patches, asked once at its start).

It runs outside the workflow sandbox: it is the hot path, and the sandbox's re-import of its module on every
run cost more worker CPU than the whole notification otherwise (bench/results/pipeline-profile.txt). What the
sandbox would catch, the replay of tests/histories catches: keep this module free of I/O, clocks and randomness
(use workflow.now(), workflow.random()), and import only herald's pure modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.answers import AnswerActivities
    from activities.audit import AuditActivities
    from activities.chat_conclusion import ChatActivities
    from activities.dedup import DedupActivities
    from activities.delivery import DeliveryActivities
    from activities.digest import DigestActivities
    from activities.group import GroupActivities
    from activities.oncall import OnCallActivities
    from activities.preferences import PreferenceActivities
    from activities.resolve import ResolveActivities
    from activities.silences import SilenceActivities
    from activities.teams import TeamActivities
    from activities.throttle import ThrottleActivities
    from herald.domain import answers, grouping, oncall, quorum, resolve, retry, routing, search, silences, teams
    from herald.domain.dedup import content_key, question_key
    from herald.domain.digest import digest_item
    from herald.domain.resolve import resolved_notice
    from herald.models import (
        AgentCallback,
        AgentNotification,
        Answer,
        AnswerRequest,
        ChannelName,
        ChannelResult,
        ChannelStatus,
        ChatConclusion,
        DedupCheck,
        DedupResult,
        DeliveryFailure,
        DeliveryReceipt,
        DeliveryRequest,
        DigestEnqueue,
        GroupDecision,
        GroupEnqueue,
        GroupMembersQuery,
        MemberAnswer,
        MemberOutcome,
        NotificationOutcome,
        NotificationRequest,
        NotificationStatus,
        OpsAlert,
        OutcomeQuery,
        PreferenceQuery,
        Priority,
        RefusedAnswer,
        Resolution,
        ResolveRequest,
        RetrySettings,
        ThrottledItem,
        ThrottleEnqueue,
        notification_workflow_id,
    )
    from herald.models.oncall import (
        EscalationAck,
        EscalationAcked,
        EscalationLink,
        EscalationOutcome,
        EscalationPolicy,
        EscalationStepOutcome,
        PolicyQuery,
        TargetQuery,
    )

# New runs upsert their search attributes (status, channels) and so add commands that older histories
# lack: the patch keeps those replaying. Deprecate it once no run started before it can be replayed.
SEARCHABLE_PATCH = "searchable-v1"
# New runs do their store steps (dedup, preferences, digest, audit) as local activities and try each channel
# once as a local activity before the durable, retried activity: the usual notification then costs the
# server one workflow task instead of seven. Older histories replay the old path.
LOCAL_PATCH = "local-steps-v1"
# New runs of a question (a notification with actions) are never digested and, once delivered, wait for the
# answer on a timer until the deadline; an ack arriving before a critical escalation skips it. Histories
# recorded before never had actions or answers; the patch marks the runs that took the new commands.
ANSWERS_PATCH = "answers-v1"
# New runs of a question dedup on a key of their own (the actions count: herald.dedup.question_key); a duplicate
# joins the question it repeats (a `join` signal, then that one's outcome by signal, or from the store when it had
# finished) instead of ending `suppressed_duplicate` unanswered; a critical question that reaches nobody alerts
# ops; and every ending of a question calls the agent back. Older question histories replay the old path.
QUESTION_ENDS_PATCH = "question-ends-v1"
# New runs of a critical notification (not only a question) that no channel can carry raise an ops alert, as an
# unconfirmed one does; runs before it ended no_channel silently.
CRITICAL_NO_CHANNEL_PATCH = "critical-no-channel-v1"
# New runs of a question delivered to a chat (Slack, Telegram) edit those messages at its end, buttons replaced by
# what was decided. Asked only by a run that delivered to a chat channel, which no earlier history did.
CHAT_CONCLUDE_PATCH = "chat-conclude-v1"
CHAT_CHANNELS = (ChannelName.slack, ChannelName.telegram)
# New runs check the silences after dedup (one store step): a notification a silence holds ends `silenced`, sent
# nowhere. Runs started before it replay without the step.
SILENCES_PATCH = "silences-v1"
# New runs take the `resolve` update (its agent says the problem is over): their waits (quiet hours, a retry's
# backoff, a send, the critical escalation, a question's answer) end early when it comes, the run ends `resolved`
# and tells what was delivered. They are found by the HeraldResolveKey search attribute, upserted here when the
# starter did not set it. Older runs refuse the update and replay as they ran.
RESOLVE_PATCH = "resolve-v1"
# New runs of a notification over its agent's max_per_hour, for a user without a digest, hand it to
# `throttle/<user_id>/<agent_id>` (one store step) for the hour's "N more" message. Asked at the start of every
# run (_begin); the throttled runs that go to the digest take the digest's commands, as digested ones do.
THROTTLE_PATCH = "throttle-v1"
# New runs of a notification with a group_key (not critical, not a question) hand it, after the throttle and before
# quiet hours, to `group/<user_id>/<agent_id>/<group_key>` (one store step), which sends the group's one message; the
# run ends `grouped`. Asked at the start of every run (_begin), after THROTTLE_PATCH.
GROUP_PATCH = "group-v1"
# New runs of a notification to a group (`group`) read its members (one store step), start one child
# NotificationWorkflow per member (`notification/<id>.<member>`, each a single-user notification of its own), wait for
# them and record each member's outcome; a question's children tell it their answers (`member_answer`) and it tells
# them the decision (`group_decided`, herald/domain/quorum.py). Asked in _begin by group notifications and by their
# members' notifications only: no earlier history had either.
TEAM_PATCH = "team-v1"
# New runs of a notification naming an escalation_policy notify the policy's steps in turn (each person a child
# NotificationWorkflow, on durable timers) until someone acks; the children (NotificationRequest.escalation) wait for
# that ack and tell their parent. Asked in _begin only by such runs, which no earlier history had.
ESCALATION_PATCH = "escalation-v1"
# A question tells at most this many duplicates its outcome (each is a signal in its history); a duplicate beyond
# them reads the outcome from the store at its own deadline.
JOINERS_MAX = 100

# Store activities wait out a store outage rather than lose the notification.
STORE_TIMEOUT = timedelta(seconds=15)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)


A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class Paths:
    """Which recorded path a run takes: the patches it was started under (asked once, at its start)."""

    searchable: bool  # SEARCHABLE_PATCH: upserts its status and channels
    local: bool  # LOCAL_PATCH: store steps and first sends as local activities
    ends: bool  # a question on the QUESTION_ENDS_PATCH path
    resolvable: bool = False  # RESOLVE_PATCH: takes the `resolve` update
    silences: bool = False  # SILENCES_PATCH: checks the silences after dedup
    throttle: bool = False  # THROTTLE_PATCH: a throttled run without a digest goes to the hour's "N more" message
    group: bool = False  # GROUP_PATCH: a notification with a group_key goes to its group's one message
    team: bool = False  # TEAM_PATCH: a group notification fans out; a member's tells the group its answer
    escalation: bool = False  # ESCALATION_PATCH: escalates along its policy, or is one step's child


@dataclass(frozen=True)
class Route:
    """The user's preferences applied to one notification (the plan phase's input)."""

    enabled: dict[ChannelName, bool]
    digest: bool
    hold_until: datetime | None
    throttled: bool = False  # over max_per_hour: to the digest (`digest`), else the hour's "N more" message
    throttle_until: datetime | None = None  # the end of the throttle's hour


@dataclass
class Ledger:
    """The channels of one delivery, shared by its concurrent fallback chains and the critical escalation: which
    are enabled, which are used already, and which planned channel's chain each one serves."""

    enabled: dict[ChannelName, bool]
    used: set[ChannelName] = field(default_factory=set)
    slot_of: dict[ChannelName, int] = field(default_factory=dict)


class ChainEnd(StrEnum):
    """How one planned channel's fallback chain ended."""

    delivered = "delivered"  # on the channel or one of its fallbacks
    failed = "failed"  # every fallback failed too
    joined = "joined"  # its next fallback is another chain's channel: that chain answers for it


@dataclass(frozen=True)
class Chain:
    end: ChainEnd
    joined: ChannelName | None = None  # with ChainEnd.joined: the channel whose chain it joined


@dataclass(frozen=True)
class Delivery:
    """The deliver phase's result: which planned channels were fulfilled, in plan order, and the channels used."""

    fulfilled: list[bool]
    ledger: Ledger


class Resolved(Exception):
    """Raised out of the phase a resolve interrupted (or the next one it reaches): `run` ends the run `resolved`."""


@dataclass(frozen=True)
class Confirmation:
    """After the confirm phase: whether the run waits for an answer (a question) and whether it reached anyone."""

    asks: bool
    reached: bool


def retry_policy(settings: RetrySettings) -> RetryPolicy:
    """Temporal's terms for a delivery's retry schedule."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=settings.initial_interval_seconds),
        backoff_coefficient=settings.backoff_coefficient,
        maximum_interval=timedelta(seconds=settings.maximum_interval_seconds),
        maximum_attempts=settings.maximum_retries + 1,
    )


def failure_cause(err: ActivityError | ApplicationError) -> BaseException | None:
    """The activity's own error: a regular activity's comes wrapped in ActivityError, a local one's bare."""
    return err.cause if isinstance(err, ActivityError) else err


def delivery_failure(cause: ApplicationError) -> DeliveryFailure | None:
    """What the delivery activity said of its failed try (activities/delivery.py), None from any other error."""
    details = cause.details[0] if cause.details else None
    return DeliveryFailure.model_validate(details) if isinstance(details, dict) else None


@workflow.defn(name="NotificationWorkflow", sandboxed=False)
class NotificationWorkflow:
    @workflow.init
    def __init__(self, request: NotificationRequest) -> None:
        n = request.notification
        self._request = request
        self._outcome = NotificationOutcome(
            notification_id=n.notification_id,
            workflow_id=workflow.info().workflow_id,
            agent_id=n.agent_id,
            user_id=n.recipient,
            priority=n.priority,
        )
        # The run's recorded path (its patches), from run's first phase (_begin): the phases are handed it; the steps
        # under them (store steps, sends, the channels upsert) and the answer validator read it here.
        self._paths = Paths(searchable=False, local=False, ends=False)
        self._delivery_retry = retry_policy(request.policy.retry)
        # Questions: what they offer and until when (fields only: no command, so older histories replay as before).
        self._deadline = answers.answer_deadline(n, request.policy.answer_window_seconds)
        self._outcome.rule = answers.rule_of(n)
        if n.actions:
            self._outcome.actions = list(n.actions)
            self._outcome.respond_by = self._deadline
        self._closing = False  # recording the outcome: no answer is taken any more
        self._joiners: list[str] = []  # workflow ids of duplicates waiting for this question's outcome
        self._original: NotificationOutcome | None = None  # a duplicate: the outcome of the question it repeats
        self._notify_resolved = False  # from the route: a resolve is told by email and SMS (notify_resolved)
        self._decision: GroupDecision | None = None  # a question to a group: decided (the group's, or a member's)
        if n.group is not None:
            self._outcome.group = n.group
        # An escalation: its children's notification ids (to user ids), and the first ack one of them signalled.
        self._escalation_children: dict[str, str] = {}
        self._escalation_ack: EscalationAck | None = None

    @workflow.query(name="status")
    def status(self) -> NotificationOutcome:
        """The live per-channel state; the final outcome once the workflow has finished."""
        return self._outcome

    @workflow.signal(name="join")
    def join(self, workflow_id: str) -> None:
        """A duplicate of this question (its workflow id) waits for this one's outcome: told when it ends."""
        if len(self._joiners) < JOINERS_MAX and workflow_id not in self._joiners:
            self._joiners.append(workflow_id)

    @workflow.signal(name="original_outcome")
    def original_outcome(self, original: NotificationOutcome) -> None:
        """The final outcome of the question this duplicate joined (from that question's workflow)."""
        if original.notification_id == self._outcome.duplicate_of:
            self._original = original

    @workflow.signal(name="member_answer")
    def member_answer(self, told: MemberAnswer) -> None:
        """A question to a group: a member's notification says its member answered. Every answer is kept; the first
        that decides the quorum (herald.domain.quorum.decide) is the group's answer."""
        n, outcome = self._request.notification, self._outcome
        if n.group is None or any(a.user_id == told.answer.user_id for a in outcome.answers):
            return
        outcome.answers.append(told.answer)
        if self._decision is not None:
            return
        decided = quorum.decide(outcome.answers, n.quorum)
        if decided is not None:
            self._decision = GroupDecision(
                action_id=decided.action_id, by=decided.by, text=quorum.decision_text(decided, n.actions)
            )
            outcome.decision = self._decision
            outcome.answer = decided.deciding
        self._show()

    @workflow.signal(name="group_decided")
    def group_decided(self, decision: GroupDecision) -> None:
        """A member's notification: the group's question is decided (by this member's answer or others'): its wait
        ends and its chat messages say so."""
        if self._request.team is not None and self._decision is None:
            self._decision = decision
            self._outcome.decision = decision

    @workflow.signal(name="escalation_ack")
    def escalation_ack(self, ack: EscalationAck) -> None:
        """One of this escalation's children was acked or answered: the first stops the escalation."""
        if self._escalation_ack is None and ack.notification_id in self._escalation_children:
            self._escalation_ack = ack

    @workflow.signal(name="escalation_taken")
    def escalation_taken(self, taken: Answer) -> None:
        """A step's child: someone else acked the escalation (`taken`), so this one stops waiting."""
        outcome = self._outcome
        if self._request.escalation is not None and outcome.acknowledged is None and outcome.answer is None:
            outcome.taken_by = outcome.taken_by or taken

    @workflow.signal(name="escalation_resolved")
    def escalation_resolved(self, resolution: Resolution) -> None:
        """A step's child: the escalation was resolved, so this one is too (while it is open), as by its own resolve."""
        if self._request.escalation is not None and self._paths.resolvable:
            if resolve.not_open(self._outcome, self._closing) is None:
                self._outcome.resolved = resolution
                self._show()

    @workflow.update(name="resolve")
    def resolve(self, request: ResolveRequest) -> Resolution:
        """Its agent says the problem is over: the run's waits end, and it ends `resolved` (see `_end_resolved`)."""
        self._outcome.resolved = Resolution(by=request.by, at=workflow.now())
        self._show()
        return self._outcome.resolved

    @resolve.validator
    def _check_resolve(self, request: ResolveRequest) -> None:
        """Refuse, unrecorded, a resolve of a run that can't take one (started before RESOLVE_PATCH) or that is not
        open (herald.domain.resolve.not_open)."""
        if not self._paths.resolvable:
            raise ApplicationError("this notification started before resolving existed", type="NotResolvable")
        if self._request.notification.group is not None:
            raise ApplicationError(
                "a group notification is resolved through its members' notifications", type="NotOpen"
            )
        reason = resolve.not_open(self._outcome, self._closing)
        if reason is not None:
            raise ApplicationError(reason, type="NotOpen")

    @workflow.update(name="respond")
    def respond(self, request: AnswerRequest) -> Answer:
        """The person's answer (or `ack` / `snooze`), from whichever channel reached them.

        The first valid answer wins. A later one passed the validator but came second: it is kept in the
        outcome's `refused_answers` (part of the history too) and refused with the reason.
        """
        n, outcome = self._request.notification, self._outcome
        late = answers.late_answer(request, n, outcome)
        now = workflow.now()
        if late is not None:
            outcome.refused_answers.append(
                RefusedAnswer(action_id=request.action_id, channel=request.channel, at=now, reason=late.reason)
            )
            raise ApplicationError(late.reason, type=late.type, non_retryable=True)
        # A text action's answer keeps the person's words (the validator refused a text action without them, and
        # text for any other action). No new command: older histories replay unchanged, so no patch is needed.
        answer = Answer(
            action_id=request.action_id,
            user_id=request.user_id,
            channel=request.channel,
            answered_at=now,
            text=request.text,
        )
        if answers.kind_of(request.action_id, n) is answers.AnswerKind.answer:
            outcome.answer = answer
        else:
            outcome.acknowledged = answer
        self._show()
        return answer

    @respond.validator
    def _check_answer(self, request: AnswerRequest) -> None:
        """Refuse, unrecorded, what can never be taken: unknown action, text missing (a text action) or out of place
        (any other), another user, too late, finished."""
        if self._closing or self._outcome.resolved is not None:
            raise ApplicationError(f"this notification has finished ({self._outcome.status.value})", type="Closed")
        if self._request.notification.group is not None:
            raise ApplicationError("a group's members answer their own notifications (<id>.<member>)", type="Closed")
        if self._decision is not None:
            raise ApplicationError(f"the group has decided: {self._decision.text}", type="Closed")
        if self._paths.escalation and self._request.notification.escalation_policy and not self._request.escalation:
            raise ApplicationError(
                "this notification escalates: ack or answer one of its steps' notifications", type="Closed"
            )
        if self._outcome.taken_by is not None:
            taken = self._outcome.taken_by
            raise ApplicationError(oncall.taken_text(taken.user_id, taken.channel.value), type="Closed")
        if self._paths.ends and self._outcome.duplicate_of is not None:
            raise ApplicationError(
                f"this question repeats {self._outcome.duplicate_of}, which takes the answer", type="Closed"
            )
        refusal = answers.invalid_answer(request, self._request.notification, workflow.now(), self._deadline)
        if refusal is None:
            late = answers.late_answer(request, self._request.notification, self._outcome)
            if late is not None and answers.refusals_full(self._outcome):
                refusal = answers.Refusal("TooManyAnswers", late.reason)
        if refusal is not None:
            raise ApplicationError(refusal.reason, type=refusal.type)

    @workflow.run
    async def run(self, request: NotificationRequest) -> NotificationOutcome:
        n = request.notification
        self._paths = paths = self._begin(n)
        try:
            dedup = await self._dedup(request, paths)
            if dedup.duplicate:
                return await self._end_duplicate(dedup.owner_notification_id, paths)
            if paths.team and n.group is not None:
                return await self._for_group(request, paths)
            silence_id = await self._silenced(request)
            if silence_id is not None:
                return await self._end_silenced(silence_id, paths)
            if paths.escalation and n.escalation_policy is not None and request.escalation is None:
                return await self._end_escalated(request, paths)
            route = await self._route(request)
            if route.digest:
                return await self._end_digested(request, paths, route)
            if route.throttled:
                return await self._end_throttled(request, paths, route)
            # Snoozed, or no channel of its own to go to: it ends as it would without a group_key (no_channel).
            snoozed = self._outcome.snoozed_until is not None or not routing.plan_channels(n, route.enabled)
            if paths.group and grouping.groups(
                n, is_digest=request.is_digest, is_group=request.is_group, snoozed=snoozed
            ):
                return await self._end_grouped(request, paths)
            await self._hold(route.hold_until)
            plan = routing.plan_channels(n, route.enabled)
            if not plan:
                return await self._end_no_channel(n, paths)
            delivery = await self._deliver_plan(plan, Ledger(enabled=route.enabled))
            confirmation = await self._confirm_critical(request, delivery, paths)
            if paths.escalation and request.escalation is not None:
                if confirmation.reached:
                    await self._await_ack(request.escalation)
            elif confirmation.asks and confirmation.reached:
                await self._await_answer()
        except Resolved:
            return await self._end_resolved(paths)
        if confirmation.asks:
            await self._call_back()
        return await self._finish(paths)

    # --- the phases, in the order run takes them ------------------------------------------------------------

    def _begin(self, n: AgentNotification) -> Paths:
        """Which recorded path this run takes (its patches, in the order older runs asked them), and its search
        attributes."""
        searchable = workflow.patched(SEARCHABLE_PATCH)
        local = workflow.patched(LOCAL_PATCH)
        if searchable:
            workflow.upsert_search_attributes(
                search.missing_updates(workflow.info().typed_search_attributes, search.notification_attributes(n))
            )
        self._show()
        ends = bool(n.actions) and workflow.patched(QUESTION_ENDS_PATCH)
        resolvable = workflow.patched(RESOLVE_PATCH)
        if resolvable and searchable:
            found_by = search.resolve_attributes(n)
            updates = search.missing_updates(workflow.info().typed_search_attributes, found_by)
            if updates:
                workflow.upsert_search_attributes(updates)
        # Asked here, before the first step, like the others: a patch first asked after a local activity (as these two
        # were) left its marker where a replay for a query did not always ask it in the same place (a nondeterminism
        # error in one run of make flake, under load).
        silences = workflow.patched(SILENCES_PATCH)
        throttle = workflow.patched(THROTTLE_PATCH)
        group = workflow.patched(GROUP_PATCH)
        team = (n.group is not None or self._request.team is not None) and workflow.patched(TEAM_PATCH)
        escalates = n.escalation_policy is not None or self._request.escalation is not None
        escalation = escalates and workflow.patched(ESCALATION_PATCH)
        return Paths(
            searchable=searchable,
            local=local,
            ends=ends,
            resolvable=resolvable,
            silences=silences,
            throttle=throttle,
            group=group,
            team=team,
            escalation=escalation,
        )

    async def _dedup(self, request: NotificationRequest, paths: Paths) -> DedupResult:
        """Claim the notification's dedup key (a question's own key on the question-ends path)."""
        n = request.notification
        dedup = await self._store_step(
            DedupActivities.check_duplicate,
            DedupCheck(
                key=question_key(n) if paths.ends else content_key(n),
                notification_id=n.notification_id,
                window_seconds=request.policy.dedup_window_seconds,
            ),
            "check duplicate",
        )
        self._stop_if_resolved()
        return dedup

    async def _end_duplicate(self, original_id: str, paths: Paths) -> NotificationOutcome:
        """A duplicate asks nobody; a question on the question-ends path takes the ending of the one it repeats."""
        outcome = self._outcome
        outcome.status = NotificationStatus.suppressed_duplicate
        outcome.duplicate_of = original_id
        if paths.ends:
            await self._join(original_id)
            await self._call_back()
        return await self._finish(paths)

    async def _for_group(self, request: NotificationRequest, paths: Paths) -> NotificationOutcome:
        """A notification to a group: its members (read once), one child notification per member, each with that
        member's own preferences; a question waits for its quorum and tells the members' notifications the decision;
        the outcome holds each member's (herald.domain.teams.group_status says the group's status)."""
        n, outcome = request.notification, self._outcome
        found = await self._store_step(
            TeamActivities.group_members, GroupMembersQuery(name=n.group or ""), "read the group's members"
        )
        if not found.members:
            outcome.status = NotificationStatus.failed
            outcome.group_error = f"no group {n.group}" if found.members is None else f"the group {n.group} is empty"
        else:
            results = await self._start_members(request, found.members)
            if n.actions:
                outcome.status = NotificationStatus.pending
                self._show()
                await workflow.wait_condition(
                    lambda: self._decision is not None or all(r.done() for r in results.values()),
                    timeout_summary="wait for the quorum",
                )
                if self._decision is not None:
                    await asyncio.gather(*(self._tell_decided(member) for member in found.members))
            ended = await asyncio.gather(*results.values())
            outcome.members = dict(zip(found.members, ended, strict=True))
            outcome.status = teams.group_status(
                outcome.members, asks=bool(n.actions), decided=self._decision is not None
            )
        if paths.ends:
            await self._call_back()
        return await self._finish(paths)

    async def _start_members(
        self, request: NotificationRequest, members: list[str]
    ) -> dict[str, asyncio.Future[MemberOutcome]]:
        """Start each member's notification (`notification/<id>.<member>`); each member's outcome, as it ends."""
        parent = self._outcome.workflow_id
        started: dict[str, asyncio.Future[MemberOutcome]] = {}
        for member in members:
            child = teams.member_request(request, member, parent)
            started[member] = asyncio.ensure_future(self._member(child))
        return started

    async def _member(self, child: NotificationRequest) -> MemberOutcome:
        c = child.notification
        try:
            handle = await workflow.start_child_workflow(
                NotificationWorkflow.run,
                child,
                id=c.workflow_id,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=search.start_attributes(c),
                static_summary=search.notification_summary(c),
            )
            return teams.member_outcome(await handle)
        except (FailureError, WorkflowAlreadyStartedError):
            return MemberOutcome(notification_id=c.notification_id, status=NotificationStatus.failed)

    async def _tell_decided(self, member: str) -> None:
        """Tell one member's notification the group's decision (one that has ended already is skipped)."""
        n = self._request.notification
        child = notification_workflow_id(teams.member_notification_id(n.notification_id, member))
        try:
            await workflow.get_external_workflow_handle(child).signal("group_decided", self._decision)
        except FailureError:
            pass

    async def _tell_group(self) -> None:
        """A member's notification answered: tell the group's workflow (which decides the quorum)."""
        team, answer = self._request.team, self._outcome.answer
        if team is None or answer is None:
            return
        told = MemberAnswer(notification_id=self._outcome.notification_id, answer=answer)
        try:
            await workflow.get_external_workflow_handle(team.workflow_id).signal("member_answer", told)
        except FailureError:
            pass

    async def _silenced(self, request: NotificationRequest) -> str | None:
        """The silence holding this notification, if one does (on the silences patch). A digest email is never
        silenced: what it carries passed the silences when it was digested."""
        if request.is_digest or request.is_group or not self._paths.silences:
            return None
        n = request.notification
        match = await self._store_step(
            SilenceActivities.check_silences, silences.query_for(n, answers.rule_of(n)), "check silences"
        )
        return match.silence_id

    async def _end_silenced(self, silence_id: str, paths: Paths) -> NotificationOutcome:
        """A silence holds it: `silenced`, sent nowhere, the silence named; a question asks nobody and its agent is
        called back with the ending, as for the others."""
        self._outcome.status = NotificationStatus.silenced
        self._outcome.silence_id = silence_id
        if paths.ends:
            await self._call_back()
        return await self._finish(paths)

    async def _route(self, request: NotificationRequest) -> Route:
        """The user's preferences for this notification: its enabled channels, whether it goes to the digest, how
        long quiet hours hold it."""
        n = request.notification
        # A digest email is sent as it is: its own priority must not digest or filter it again.
        preferences = await self._store_step(
            PreferenceActivities.merge_preferences,
            PreferenceQuery(
                user_id=n.recipient,
                agent_id=n.agent_id,
                priority=None if request.is_digest else n.priority,
                channels=None if request.is_digest else n.channels,
                rule=answers.rule_of(n),
                asks=bool(n.actions),
                notification_id=None if request.is_group else n.notification_id,
            ),
            "merge preferences",
        )
        self._outcome.snoozed_until = preferences.snoozed_until  # muted: nothing is enabled, so no channel follows
        self._outcome.throttled_channels = list(preferences.throttled_channels)  # over their max_per_hour: left out
        self._notify_resolved = preferences.notify_resolved
        # A question is never digested: a digest carries no actions, and the answer is wanted now.
        digest = preferences.digest and not (n.actions and workflow.patched(ANSWERS_PATCH))
        # A group's message: its members passed the digest and the throttle (its query claims no slot: no id).
        digest = digest and not request.is_group
        self._stop_if_resolved()
        return Route(
            enabled=preferences.enabled,
            digest=digest,
            hold_until=preferences.hold_until,
            throttled=preferences.throttled,
            throttle_until=preferences.throttle_until,
        )

    async def _end_digested(self, request: NotificationRequest, paths: Paths, route: Route) -> NotificationOutcome:
        """Into the user's digest: `digested`, or `throttled` when it is there for being over max_per_hour."""
        n = request.notification
        await self._store_step(
            DigestActivities.enqueue_digest,
            DigestEnqueue(user_id=n.recipient, item=digest_item(n), policy=request.policy),
            "add to digest" if not route.throttled else "throttled: add to digest",
        )
        self._outcome.status = NotificationStatus.throttled if route.throttled else NotificationStatus.digested
        return await self._finish(paths)

    async def _end_throttled(self, request: NotificationRequest, paths: Paths, route: Route) -> NotificationOutcome:
        """Over max_per_hour and the user has no digest: counted into the hour's one "N more" message (sent by
        `throttle/<user_id>/<agent_id>` when the hour ends), never dropped: `throttled`."""
        n = request.notification
        if route.throttle_until is not None and paths.throttle:
            await self._store_step(
                ThrottleActivities.enqueue_throttled,
                ThrottleEnqueue(
                    user_id=n.recipient,
                    agent_id=n.agent_id,
                    item=ThrottledItem(item=digest_item(n), until=route.throttle_until),
                    policy=request.policy,
                ),
                "throttled: count into the hour's message",
            )
        self._outcome.status = NotificationStatus.throttled
        return await self._finish(paths)

    async def _end_grouped(self, request: NotificationRequest, paths: Paths) -> NotificationOutcome:
        """It has a group_key: handed to `group/<user_id>/<agent_id>/<group_key>`, which sends it with the others of its
        group in one message and records that message on this outcome: `grouped`."""
        n = request.notification
        group_key = n.group_key or ""
        await self._store_step(
            GroupActivities.enqueue_grouped,
            GroupEnqueue(
                user_id=n.recipient,
                agent_id=n.agent_id,
                group_key=group_key,
                member=grouping.member_of(n),
                policy=request.policy,
            ),
            "grouped: hand to the group",
        )
        self._outcome.status = NotificationStatus.grouped
        self._outcome.group_id = grouping.group_workflow_id(n.recipient, n.agent_id, group_key)
        return await self._finish(paths)

    async def _end_escalated(self, request: NotificationRequest, paths: Paths) -> NotificationOutcome:
        """It names an escalation policy: notify the policy's steps in turn (`_escalate`) instead of its user. The first
        ack or answer on any step's notification stops it (`confirmed`, or `answered` with an answer); nobody acking
        through every step and repeat ends it `unconfirmed` with an ops alert; an unknown policy, `no_channel`."""
        n, outcome = request.notification, self._outcome
        name = n.escalation_policy or ""
        outcome.escalation = EscalationOutcome(policy=name)
        found = await self._store_step(
            OnCallActivities.get_policy, PolicyQuery(name=name), "read the escalation policy"
        )
        if found.policy is None:
            outcome.escalation.error = f"no escalation policy {name}"
            outcome.status = NotificationStatus.no_channel
            if n.priority is Priority.critical:
                await self._alert_ops("critical_no_channel", f"critical notification reached nobody: no policy {name}")
            return await self._finish(paths)
        await self._escalate(request, found.policy, outcome.escalation)  # Resolved: run ends it `resolved`
        ack = self._escalation_ack
        if ack is None:
            outcome.status = NotificationStatus.unconfirmed
            await self._alert_ops(
                "escalation_unacknowledged", f"nobody acknowledged it through escalation policy {name}"
            )
            return await self._finish(paths)
        outcome.escalation.acked = EscalationAcked(
            by=ack.user_id,
            channel=ack.answer.channel.value,
            at=ack.answer.answered_at,
            notification_id=ack.notification_id,
            round=ack.round,
            step=ack.step,
        )
        if ack.answer.action_id in {a.id for a in n.actions}:
            outcome.answer, outcome.status = ack.answer, NotificationStatus.answered
        else:
            outcome.acknowledged, outcome.status = ack.answer, NotificationStatus.confirmed
        await self._tell_taken(ack)
        if n.actions:
            await self._call_back()
        return await self._finish(paths)

    async def _escalate(
        self, request: NotificationRequest, policy: EscalationPolicy, escalation: EscalationOutcome
    ) -> None:
        """Each step in turn (its repeats too): resolve its targets now (who is on call: a store step, recorded), notify
        those not yet asked this round, one child NotificationWorkflow each (that person's own preferences), then wait
        `ack_within_seconds` on a durable timer for an ack. A replay after a worker restart takes the recorded steps
        again, so none is skipped or repeated."""
        asked: set[str] = set()
        current = 0
        for step in oncall.steps_of(policy):
            self._stop_if_resolved()
            if self._escalation_ack is not None:
                return
            if step.round != current:
                current, asked = step.round, set()
            at = workflow.now()
            targets = await self._store_step(
                OnCallActivities.resolve_targets,
                TargetQuery(targets=step.targets, at=at),
                f"step {step.step + 1}: who is on call",
            )
            self._stop_if_resolved()
            users = oncall.to_notify(targets.user_ids, asked)
            asked.update(users)
            record = EscalationStepOutcome(
                round=step.round, step=step.step, at=at, targets=step.targets, unresolved=targets.unresolved
            )
            escalation.steps.append(record)
            for user_id in users:
                child_id = await self._notify_step(request, step, user_id)
                if child_id is not None:
                    record.notified.append(user_id)
                    record.notifications.append(child_id)
            self._show()
            try:
                await workflow.wait_condition(
                    lambda: self._escalation_ack is not None or self._outcome.resolved is not None,
                    timeout=step.ack_within_seconds,
                    timeout_summary=f"step {step.step + 1}: wait for an ack",
                )
            except TimeoutError:
                continue
            self._stop_if_resolved()
            return

    async def _notify_step(self, request: NotificationRequest, step: oncall.Step, user_id: str) -> str | None:
        """Start one person's child notification for a step (abandoned: it outlives this run); its id, None when
        that id was taken already."""
        from workflows.options import start_notification_child  # it imports this module

        n = request.notification
        child_id = oncall.child_notification_id(n.notification_id, step.round, step.step, user_id)
        child = n.model_copy(
            update={
                "actions": oncall.step_actions(n.actions),
                "notification_id": child_id,
                "user_id": user_id,
                "dedup_key": child_id,
                "created_at": workflow.now(),  # its answer window runs from the step, not from the escalation's start
                "escalation_policy": None,
                "callback_url": None,
                "group_key": None,
            }
        )
        link = EscalationLink(parent_workflow_id=self._outcome.workflow_id, round=step.round, step=step.step)
        self._escalation_children[child_id] = user_id
        try:
            await start_notification_child(
                NotificationRequest(notification=child, policy=request.policy, escalation=link)
            )
        except WorkflowAlreadyStartedError:
            return None
        return child_id

    async def _tell_taken(self, ack: EscalationAck) -> None:
        """Tell every other child who took it: each stops waiting and edits its chat messages ("Acknowledged by ada
        via slack")."""
        others = [c for c in self._escalation_children if c != ack.notification_id]
        await asyncio.gather(
            *(self._signal(notification_workflow_id(c), "escalation_taken", ack.answer) for c in others)
        )

    async def _signal(self, workflow_id: str, name: str, arg: Any) -> None:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(name, arg)
        except FailureError:
            pass  # it has finished

    async def _await_ack(self, link: EscalationLink) -> None:
        """A step's child, delivered: wait (until its deadline) for this person's ack or answer, which it signals to the
        escalation, or for someone else's (`escalation_taken`); then its chat messages say who took it."""
        outcome = self._outcome
        wait = (self._deadline - workflow.now()).total_seconds()
        ended = outcome.status  # how its delivery ended: its status again once the wait is over
        if wait > 0:
            outcome.status = NotificationStatus.pending  # open, waiting for the ack: a resolve reaches it
            self._show()
            try:
                await workflow.wait_condition(
                    lambda: (
                        outcome.answer is not None
                        or outcome.acknowledged is not None
                        or outcome.taken_by is not None
                        or outcome.resolved is not None
                    ),
                    timeout=wait,
                    timeout_summary="wait for an ack",
                )
            except TimeoutError:
                pass
        took = outcome.answer or outcome.acknowledged
        if took is None and outcome.taken_by is None and outcome.resolved is not None:
            raise Resolved
        outcome.status = ended
        if outcome.answer is not None:
            outcome.status = NotificationStatus.answered
        if took is not None:
            ack = EscalationAck(
                notification_id=outcome.notification_id,
                user_id=outcome.user_id,
                answer=took,
                round=link.round,
                step=link.step,
            )
            await self._signal(link.parent_workflow_id, "escalation_ack", ack)
        await self._conclude_chats()

    async def _hold(self, until: datetime | None) -> None:
        """Quiet hours: a durable timer, so a worker restart during the night loses nothing."""
        if until is None:
            return
        self._outcome.held_until = until
        wait = (until - workflow.now()).total_seconds()
        if wait > 0:
            self._show()
            await self._unless_resolved(lambda: workflow.sleep(wait, summary="quiet hours"))

    async def _end_no_channel(self, n: AgentNotification, paths: Paths) -> NotificationOutcome:
        """No channel may carry it: `no_channel`, and for a critical one an ops alert (older runs: questions only)."""
        self._outcome.status = NotificationStatus.no_channel
        if n.priority is Priority.critical and (paths.ends or workflow.patched(CRITICAL_NO_CHANNEL_PATCH)):
            what = "question" if n.actions else "notification"
            await self._alert_ops(
                "critical_no_channel", f"critical {what} reached nobody: no channel is enabled for it"
            )
        if paths.ends:
            await self._call_back()
        return await self._finish(paths)

    async def _deliver_plan(self, plan: list[ChannelName], ledger: Ledger) -> Delivery:
        """Every planned channel concurrently, each down its own fallback chain; which planned channels were
        fulfilled (a chain that joined another's counts as that one does)."""
        self._use(ledger, plan)
        ledger.slot_of.update({channel: slot for slot, channel in enumerate(plan)})
        chains = await self._unless_resolved(
            lambda: asyncio.gather(*(self._deliver_with_fallback(ledger, slot, c) for slot, c in enumerate(plan)))
        )
        fulfilled = [
            (chains[ledger.slot_of[chain.joined]] if chain.joined is not None else chain).end is ChainEnd.delivered
            for chain in chains
        ]
        return Delivery(fulfilled=fulfilled, ledger=ledger)

    async def _confirm_critical(self, request: NotificationRequest, delivery: Delivery, paths: Paths) -> Confirmation:
        """A critical notification short of its confirmations (and not acked yet) escalates to every enabled channel
        left; the final status, and an ops alert when it stays unconfirmed (a question's waits for its deadline)."""
        n, policy, outcome = request.notification, request.policy, self._outcome
        acked = self._acked()
        if (
            n.priority is Priority.critical
            and len(outcome.delivered_channels) < policy.critical_confirmations
            and not acked
        ):
            extra = routing.escalation_channels(
                policy.fallback_order, delivery.ledger.enabled, n.priority, delivery.ledger.used
            )
            self._use(delivery.ledger, extra)
            await self._unless_resolved(
                lambda: asyncio.gather(*(self._deliver(channel, escalation=True) for channel in extra))
            )

        confirmed = len(outcome.delivered_channels)
        outcome.status = routing.final_status(n.priority, delivery.fulfilled, confirmed, policy.critical_confirmations)
        if outcome.status is NotificationStatus.unconfirmed and acked:
            outcome.status = NotificationStatus.confirmed  # a person acked it: confirmed, no escalation needed
        # A critical question alerts ops only if nobody answers or acks it by its deadline (_await_answer), or,
        # on the QUESTION_ENDS_PATCH path, at once when it reached nobody (there is no answer to wait for).
        asks = bool(n.actions) and workflow.patched(ANSWERS_PATCH)
        reached = bool(outcome.delivered_channels)
        if outcome.status is NotificationStatus.unconfirmed and (not asks or (paths.ends and not reached)):
            await self._alert_ops(
                "critical_unconfirmed",
                f"critical notification confirmed on {confirmed} of the {policy.critical_confirmations} "
                "channels required, after escalating to every enabled channel",
            )
        return Confirmation(asks=asks, reached=reached)

    async def _alert_ops(self, kind: str, message: str) -> None:
        """Raise an ops alert: kept in the outcome and recorded in the store."""
        self._outcome.ops_alert = message
        await self._store_step(
            AuditActivities.record_ops_alert,
            OpsAlert(notification_id=self._outcome.notification_id, kind=kind, message=message),
            "record ops alert",
        )

    async def _call_back(self) -> None:
        """Call the agent back with the question's ending, if it gave a callback_url."""
        if self._request.notification.callback_url:
            await self._call_agent(self._request.notification.callback_url)

    async def _join(self, original_id: str) -> None:
        """A duplicate question: wait for the question it repeats to end and take its ending (`joined_outcome`).

        The person is asked once. The original learns of this duplicate by a `join` signal and, when it ends,
        signals its outcome back; if it had already finished (the signal finds no running workflow), or has not
        answered by the duplicate's own deadline, its outcome comes from the store.
        """
        outcome = self._outcome
        outcome.status = NotificationStatus.pending  # polling agents see `pending` until the original ends
        self._show()
        try:
            await workflow.get_external_workflow_handle(notification_workflow_id(original_id)).signal(
                "join", outcome.workflow_id
            )
        except FailureError:
            pass  # it has finished: its outcome is in the store
        else:
            wait = (self._deadline - workflow.now()).total_seconds()
            if wait > 0:
                try:
                    await workflow.wait_condition(
                        lambda: self._original is not None, timeout=wait, timeout_summary="wait for the original"
                    )
                except TimeoutError:
                    pass
        if self._original is None:
            self._original = await self._store_step(
                AuditActivities.get_outcome, OutcomeQuery(notification_id=original_id), "read the original's outcome"
            )
        joined = answers.joined_outcome(outcome, self._original)
        outcome.status, outcome.answer, outcome.acknowledged = joined.status, joined.answer, joined.acknowledged

    async def _tell_joiners(self) -> None:
        """Signal this question's outcome to every duplicate waiting for it, those joining meanwhile too.
        A duplicate that has ended already (its own deadline passed) is skipped."""
        told = 0
        while told < len(self._joiners):
            waiting, told = self._joiners[told:], len(self._joiners)
            await asyncio.gather(*(self._tell(joiner) for joiner in waiting))

    async def _tell(self, joiner: str) -> None:
        try:
            await workflow.get_external_workflow_handle(joiner).signal("original_outcome", self._outcome)
        except FailureError:
            pass

    def _acked(self) -> bool:
        """Whether the person already answered or acked (only runs that took the answers patch can have)."""
        outcome = self._outcome
        return (outcome.answer is not None or outcome.acknowledged is not None) and workflow.patched(ANSWERS_PATCH)

    async def _await_answer(self) -> None:
        """Wait, durably, for the first valid answer until the deadline: `answered`, else `expired`.

        A critical question that nobody answered or acked by then raises an ops alert, as an unconfirmed
        critical notification does.
        """
        n, outcome = self._request.notification, self._outcome
        wait = (self._deadline - workflow.now()).total_seconds()
        member = self._paths.team and self._request.team is not None
        if outcome.answer is None and wait > 0:
            outcome.status = NotificationStatus.pending  # polling agents see `pending` until the answer
            self._show()
            try:
                await workflow.wait_condition(
                    lambda: outcome.answer is not None or outcome.resolved is not None or self._decision is not None,
                    timeout=wait,
                    timeout_summary="wait for the answer",
                )
            except TimeoutError:
                pass
        if outcome.answer is None and outcome.resolved is not None:
            raise Resolved
        if member and outcome.answer is not None:
            await self._tell_group()
            wait = (self._deadline - workflow.now()).total_seconds()
            if self._decision is None and wait > 0:
                try:
                    await workflow.wait_condition(
                        lambda: self._decision is not None, timeout=wait, timeout_summary="wait for the group"
                    )
                except TimeoutError:
                    pass
        if member and self._decision is not None:
            outcome.status = NotificationStatus.answered  # by this member, or decided by the others
            await self._conclude_chats()
            return
        if outcome.answer is not None:
            outcome.status = NotificationStatus.answered
            await self._conclude_chats()
            return
        outcome.status = NotificationStatus.expired
        await self._conclude_chats()
        if n.priority is Priority.critical and outcome.acknowledged is None:
            outcome.ops_alert = "critical question: nobody answered or acknowledged it by its deadline"
            await self._store_step(
                AuditActivities.record_ops_alert,
                OpsAlert(notification_id=n.notification_id, kind="question_expired", message=outcome.ops_alert),
                "record ops alert",
            )

    async def _conclude_chats(self) -> None:
        """The question has ended: edit its chat messages (Slack, Telegram) to say how, so no button is left to
        click. Best effort, retried on the delivery schedule; a failure changes nothing else."""
        outcome = self._outcome
        chats = [c for c in CHAT_CHANNELS if (r := outcome.channels.get(c)) and r.status is ChannelStatus.delivered]
        if not chats or not workflow.patched(CHAT_CONCLUDE_PATCH):
            return
        label = None
        if outcome.answer is not None:
            label = next((a.label for a in outcome.actions if a.id == outcome.answer.action_id), None)
        conclusion = ChatConclusion(
            notification_id=outcome.notification_id,
            user_id=outcome.user_id,
            status=outcome.status.value,
            answer=outcome.answer,
            label=label,
            acknowledged=outcome.acknowledged,
            decision=self._decision.text if self._decision is not None else None,
            taken=outcome.taken_by,
        )
        await self._best_effort(
            ChatActivities.conclude_chat, conclusion, f"edit the chat messages: {outcome.status.value}"
        )

    async def _call_agent(self, url: str) -> None:
        """POST the question's result to the agent's callback_url, retried on the delivery schedule. A callback
        that fails for good changes nothing: the answer is in the outcome, and the failure in the history."""
        outcome = self._outcome
        callback = AgentCallback(
            url=url,
            notification_id=outcome.notification_id,
            workflow_id=outcome.workflow_id,
            agent_id=outcome.agent_id,
            status=outcome.status.value,
            answer=outcome.answer,
            respond_by=outcome.respond_by,
            duplicate_of=outcome.duplicate_of,
        )
        await self._best_effort(AnswerActivities.call_agent, callback, f"call the agent back: {outcome.status.value}")

    async def _best_effort(self, activity: Callable[[Any, Any], Awaitable[Any]], arg: Any, summary: str) -> None:
        """Run `activity` on the delivery retry schedule; one that fails for good changes nothing (the outcome
        stands, and the failure is in the history)."""
        try:
            await workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=timedelta(seconds=self._request.policy.send_timeout_seconds),
                retry_policy=self._delivery_retry,
                summary=summary,
            )
        except ActivityError:
            pass

    async def _deliver_with_fallback(self, ledger: Ledger, slot: int, channel: ChannelName) -> Chain:
        """Deliver on `channel`; when it fails for good, move down the fallback order: delivered, failed when every
        fallback failed, or joined the chain of another planned channel (which then answers for this one)."""
        policy, priority = self._request.policy, self._request.notification.priority
        current, fallback_for, tried = channel, None, [channel]
        while True:
            error_type = await self._deliver(current, fallback_for=fallback_for)
            if error_type is None:
                return Chain(ChainEnd.delivered)
            if self._outcome.resolved is not None:
                return Chain(ChainEnd.failed)  # resolved mid-send: no fallback
            joined = routing.joined_channel(error_type, ledger.enabled, priority, ledger.used, tried)
            if joined is not None:
                return Chain(ChainEnd.joined, joined)
            following = routing.fallback_channel(
                error_type, policy.fallback_order, ledger.enabled, priority, ledger.used
            )
            if following is None:
                return Chain(ChainEnd.failed)
            self._use(ledger, [following])
            ledger.slot_of[following] = slot
            tried.append(following)
            current, fallback_for = following, current

    async def _deliver(
        self, channel: ChannelName, *, fallback_for: ChannelName | None = None, escalation: bool = False
    ) -> str | None:
        """Run the delivery activity with its retries; None when delivered, else the final error type."""
        result = ChannelResult(channel=channel, fallback_for=fallback_for, escalation=escalation)
        self._outcome.channels[channel] = result
        self._show()
        request = DeliveryRequest(
            notification=self._request.notification, channel=channel, workflow_id=self._outcome.workflow_id
        )
        try:
            receipt = await self._send(request, search.delivery_summary(channel, fallback_for, escalation))
        except (ActivityError, ApplicationError) as err:
            cause = failure_cause(err)
            if self._outcome.resolved is not None:
                result.status = ChannelStatus.stopped  # the resolve cancelled the send or its retry
                self._show()
                return "Resolved"
            result.status = ChannelStatus.failed
            if isinstance(cause, ApplicationError):
                result.error_type = cause.type or "ApplicationError"
                result.error = cause.message
                failure = delivery_failure(cause)
                if failure is not None:
                    result.attempt_count = failure.attempt
            else:
                result.error_type = type(cause).__name__ if cause else "ActivityError"
                result.error = str(cause or err)
            self._show()
            return result.error_type
        result.status = ChannelStatus.delivered
        result.attempt_count = receipt.attempt
        result.provider_message_id = receipt.provider_message_id
        self._show()
        return None

    async def _send(self, request: DeliveryRequest, summary: str) -> DeliveryReceipt:
        """One channel's delivery with the policy's retries.

        New runs try once as a local activity: most sends succeed at once and then cost no workflow task of
        their own. A failure that may pass waits out the first backoff on a timer and moves to the durable
        activity, which keeps the rest of the policy's schedule.
        """
        timeout = timedelta(seconds=self._request.policy.send_timeout_seconds)
        if not self._paths.local:
            return await workflow.execute_activity_method(
                DeliveryActivities.deliver,
                request,
                start_to_close_timeout=timeout,
                retry_policy=self._delivery_retry,
                summary=summary,
            )
        try:
            return await workflow.execute_local_activity_method(
                DeliveryActivities.deliver,
                request,
                start_to_close_timeout=timeout,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=summary,
            )
        except (ActivityError, ApplicationError) as err:
            cause = failure_cause(err)
            later = retry.after_first_attempt(self._request.policy.retry)
            if later is None or (isinstance(cause, ApplicationError) and cause.non_retryable):
                raise
            if self._outcome.resolved is not None:
                raise  # resolved during the first attempt: no retry
            failure = delivery_failure(cause) if isinstance(cause, ApplicationError) else None
            provider_delay = failure.retry_after if failure is not None else None
            delay = retry.first_retry_delay(self._request.policy.retry, provider_delay)
        await workflow.sleep(delay, summary=f"retry {request.channel.value}")
        return await workflow.execute_activity_method(
            DeliveryActivities.deliver,
            request.model_copy(update={"first_attempt": 2}),
            start_to_close_timeout=timeout,
            retry_policy=retry_policy(later),
            summary=summary,
        )

    def _use(self, ledger: Ledger, channels: list[ChannelName]) -> None:
        """Mark channels as used; the HeraldChannels search attribute lists them from now on."""
        ledger.used.update(channels)
        if self._paths.searchable and channels:
            workflow.upsert_search_attributes(search.channels_update(ledger.used))

    def _show(self) -> None:
        """Per-channel state for the UI's current details (no command: the UI reads it by query)."""
        workflow.set_current_details(search.current_details(self._outcome))

    def _stop_if_resolved(self) -> None:
        """A resolve that came during a store step ends the run before its next phase."""
        if self._paths.resolvable and self._outcome.resolved is not None:
            raise Resolved

    async def _unless_resolved(self, work: Callable[[], Awaitable[R]]) -> R:
        """Run `work` (a wait: a timer, sends and their retries) unless and until the notification is resolved; then
        cancel it (its timers, its activities and their pending retries) and raise Resolved. Runs started before
        RESOLVE_PATCH just run it."""
        if not self._paths.resolvable:
            return await work()
        if self._outcome.resolved is not None:
            raise Resolved
        task = asyncio.ensure_future(work())
        resolved = asyncio.ensure_future(workflow.wait_condition(lambda: self._outcome.resolved is not None))
        await workflow.wait([task, resolved], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            resolved.cancel()
            return task.result()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, ActivityError, ApplicationError):
            pass  # what the cancellation ended
        raise Resolved

    async def _end_resolved(self, paths: Paths) -> NotificationOutcome:
        """Resolved: whatever was still pending stopped; what was delivered is told (herald.domain.resolve.resolve_plan:
        the live inbox, the Web Push replaced, email and SMS as the user's notify_resolved allows, the chat messages
        edited), a question calls its agent back, and the outcome is recorded `resolved`."""
        outcome = self._outcome
        outcome.status = NotificationStatus.resolved
        for result in outcome.channels.values():
            if result.status is ChannelStatus.pending:
                result.status = ChannelStatus.stopped
        self._show()
        plan = resolve.resolve_plan(outcome.channels, self._notify_resolved)
        await self._best_effort(
            ResolveActivities.announce_resolved,
            resolved_notice(self._request.notification, outcome, plan),
            "tell what was delivered: resolved",
        )
        if plan.edit:
            await self._conclude_chats()  # "Resolved", and no button left
        if self._escalation_children and outcome.resolved is not None:  # an escalation: its steps' people too
            resolution = outcome.resolved
            await asyncio.gather(
                *(
                    self._signal(notification_workflow_id(c), "escalation_resolved", resolution)
                    for c in self._escalation_children
                )
            )
        if outcome.actions:
            await self._call_back()
        return await self._finish(paths)

    async def _finish(self, paths: Paths) -> NotificationOutcome:
        """Record the outcome (the last phase, whichever way the run ends); a question then tells its duplicates."""
        self._closing = True
        self._show()
        if paths.searchable:
            workflow.upsert_search_attributes(search.status_update(self._outcome.status))
        await self._store_step(
            AuditActivities.record_outcome, self._outcome, f"record outcome: {self._outcome.status.value}"
        )
        if paths.ends:
            await self._tell_joiners()
        return self._outcome

    async def _store_step(self, activity: Callable[[Any, A], Awaitable[R]], arg: A, summary: str) -> R:
        """A store step, retried until the store answers: local on new runs, a regular activity on older ones."""
        if self._paths.local:
            return await workflow.execute_local_activity_method(
                activity, arg, start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY, summary=summary
            )
        return await workflow.execute_activity_method(
            activity, arg, start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY, summary=summary
        )
