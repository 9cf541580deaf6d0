"""herald.domain.quorum and herald.domain.teams: when a question to a group is decided, what its members are told,
and a group notification's ids and status. Pure: no Temporal, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from herald.domain import quorum, teams
from herald.models import (
    Action,
    AgentNotification,
    Answer,
    AnswerChannel,
    MemberOutcome,
    NotificationRequest,
    NotificationStatus,
    QuorumCount,
)
from herald.models.common import ID_REGEX

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ACTIONS = [Action(id="approve", label="Approve"), Action(id="deny", label="Deny")]
TWO = QuorumCount(action="approve", count=2)


def said(user: str, action: str, minute: int = 0) -> Answer:
    return Answer(
        action_id=action, user_id=user, channel=AnswerChannel.slack, answered_at=T0 + timedelta(minutes=minute)
    )


def test_first_decides_on_the_first_answer() -> None:
    decided = quorum.decide([said("ada", "deny"), said("grace", "approve")], "first")
    assert decided is not None and (decided.action_id, decided.by) == ("deny", ["ada"])
    assert quorum.decide([], "first") is None


def test_two_approvals_decide_and_one_does_not() -> None:
    assert quorum.decide([said("ada", "approve")], TWO) is None
    decided = quorum.decide([said("ada", "approve"), said("grace", "approve")], TWO)
    assert decided is not None and (decided.action_id, decided.by) == ("approve", ["ada", "grace"])
    assert decided.deciding == said("grace", "approve")


def test_a_deny_vetoes_at_once_even_after_an_approval() -> None:
    decided = quorum.decide([said("ada", "approve"), said("linus", "deny"), said("grace", "approve")], TWO)
    assert decided is not None and (decided.action_id, decided.by) == ("deny", ["linus"])


def test_a_person_counts_once() -> None:
    assert quorum.decide([said("ada", "approve"), said("ada", "approve", 1)], TWO) is None
    # ada's later deny is not hers to give: her first answer counts.
    assert quorum.decide([said("ada", "approve"), said("ada", "deny", 1)], TWO) is None


def test_the_words_members_are_told() -> None:
    two = quorum.decide([said("ada", "approve"), said("grace", "approve")], TWO)
    assert two is not None and quorum.decision_text(two, ACTIONS) == "Approved by ada and grace"
    veto = quorum.decide([said("ada", "deny")], TWO)
    assert veto is not None and quorum.decision_text(veto, ACTIONS) == "Denied by ada"
    assert quorum.people(["ada", "grace", "linus"]) == "ada, grace and linus"
    words = ("Restart", "Stay", "Stop", "Retry", "Open", "Edit", "Wait", "Yes", "Roll back")
    assert [quorum.past_tense(w) for w in words] == [
        "Restarted",
        "Stayed",
        "Stopped",
        "Retried",
        "Opened",
        "Edited",
        "Waited",
        "“Yes” chosen",
        "“Roll back” chosen",
    ]


def test_a_quorum_larger_than_the_group_is_a_problem() -> None:
    assert quorum.quorum_problem(TWO, 2) is None and quorum.quorum_problem("first", 1) is None
    assert quorum.quorum_problem(TWO, 1) == "count is 2, but the group has 1 member"


people = st.sampled_from(["ada", "grace", "linus", "edgar", "barbara"])
answers = st.lists(st.tuples(people, st.sampled_from(["approve", "deny"])), max_size=12).map(
    lambda pairs: [said(user, action, i) for i, (user, action) in enumerate(pairs)]
)


@given(answers, st.integers(min_value=1, max_value=5))
def test_decided_means_count_distinct_approvers_or_the_first_other_action(answered: list[Answer], count: int) -> None:
    rule = QuorumCount(action="approve", count=count)
    decided = quorum.decide(answered, rule)
    firsts = quorum.first_answers(answered)
    approvers: list[str] = []
    expected: tuple[str, list[str]] | None = None
    for answer in firsts:
        if answer.action_id != "approve":
            expected = (answer.action_id, [answer.user_id])
            break
        approvers.append(answer.user_id)
        if len(approvers) == count:
            expected = ("approve", approvers)
            break
    assert (None if decided is None else (decided.action_id, decided.by)) == expected
    if decided is not None:
        assert len(set(decided.by)) == len(decided.by)  # distinct people
        assert decided.deciding in firsts and decided.deciding.user_id == decided.by[-1]
        # More answers never undo a decision.
        assert quorum.decide([*answered, said("zed", "deny", 99)], rule) == decided


@given(
    st.from_regex(ID_REGEX.replace("$", r"\Z"), fullmatch=True),
    st.from_regex(ID_REGEX.replace("$", r"\Z"), fullmatch=True),
)
def test_member_ids_are_ids_and_one_per_member(notification_id: str, member: str) -> None:
    made = teams.member_notification_id(notification_id, member)
    assert len(made) <= 128 and made.startswith(notification_id[:40])
    assert made == teams.member_notification_id(notification_id, member)
    assert teams.member_notification_id(notification_id, member + "x") != made


def test_a_members_request_is_a_single_user_notification_that_calls_nobody_back() -> None:
    n = AgentNotification(
        notification_id="n1",
        agent_id="deploy",
        group="sre",
        title="Deploy?",
        actions=ACTIONS,
        quorum=TWO,
        callback_url="https://agent.example.com/cb",
    )
    child = teams.member_request(NotificationRequest(notification=n), "ada", "notification/n1")
    c = child.notification
    assert (c.notification_id, c.user_id, c.group, c.quorum, c.callback_url) == ("n1.ada", "ada", None, "first", None)
    assert child.team is not None and (child.team.workflow_id, child.team.group) == ("notification/n1", "sre")
    assert c.actions == n.actions and c.title == n.title


def member(status: NotificationStatus) -> MemberOutcome:
    return MemberOutcome(notification_id="x", status=status)


def test_a_groups_status_is_its_members_most_advanced() -> None:
    S = NotificationStatus
    mixed = {"ada": member(S.no_channel), "grace": member(S.delivered), "linus": member(S.digested)}
    assert teams.group_status(mixed, asks=False, decided=False) is S.delivered
    assert teams.group_status({"ada": member(S.digested)}, asks=False, decided=False) is S.digested
    assert teams.group_status({}, asks=False, decided=False) is S.failed
    asked = {"ada": member(S.answered), "grace": member(S.expired)}
    assert teams.group_status(asked, asks=True, decided=True) is S.answered
    assert teams.group_status(asked, asks=True, decided=False) is S.expired
    assert teams.group_status({"ada": member(S.no_channel)}, asks=True, decided=False) is S.no_channel
