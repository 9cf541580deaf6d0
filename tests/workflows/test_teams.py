"""Notifications to a group, end to end: the real Temporal dev server and worker, the real API on loopback, the real
slack-sdk and SendGrid client against loopback fakes. A burst to a group reaches each member once, on the channels
their own preferences allow; a question to a group with a quorum of two approvals is vetoed by a first deny, or
approved by two, and every member's Slack message then says what the group decided."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from herald.domain.teams import member_notification_id
from herald.models import (
    AgentNotification,
    AnswerChannel,
    ChannelName,
    Contact,
    Group,
    NotificationStatus,
    Preferences,
    utcnow,
)
from tests.fakes.slack import FakeSlack
from tests.workflows import test_chat_answers
from tests.workflows.test_answers import deploy_question, eventually
from tests.workflows.test_chat_answers import Chat, click

chat = test_chat_answers.chat  # the fixture: a worker, the API, fake Slack, Telegram and SendGrid

MEMBERS = {"ada": "U0ADA0001", "grace": "U0GRACE01", "linus": "U0LINUS01"}


async def team(chat: Chat, slack_only: bool = True) -> tuple[str, dict[str, str]]:
    """A group of three with Slack contacts (and an email for each): its name and its members' user ids."""
    suffix = uuid.uuid4().hex[:6]
    users = {name: f"{name}-{suffix}" for name in MEMBERS}
    for name, user in users.items():
        await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBERS[name], email=f"{name}@example.com"))
    now = utcnow()
    group = f"sre-{suffix}"
    await chat.store.groups.put(Group(name=group, members=list(users.values()), created_at=now, updated_at=now))
    return group, users


def buttons_for(slack: FakeSlack, member: str) -> dict[str, dict[str, Any]]:
    """The buttons of the message posted to one Slack member, by label."""
    [posted] = [c for c in slack.posted() if c.body["channel"] == member]
    [actions] = [b for b in posted.body["blocks"] if b["type"] == "actions"]
    return {e["text"]["text"]: {"action_id": e["action_id"], "value": e["value"]} for e in actions["elements"]}


def _text(slack: FakeSlack, member: str) -> str:
    [message] = [m for (conversation, _), m in slack.messages.items() if conversation == slack.dm_channel(member)]
    return str(message["text"])


def group_question(group: str, **fields: Any) -> AgentNotification:
    return deploy_question(None, [ChannelName.slack], group=group, **fields)  # type: ignore[arg-type]


async def test_a_burst_to_a_group_reaches_each_member_once_on_their_own_channels(chat: Chat) -> None:
    group, users = await team(chat)
    # ada reads email only, grace Slack only, linus both.
    await chat.store.users.put_preferences(users["ada"], Preferences.model_validate({"default": {"slack": False}}))
    await chat.store.users.put_preferences(users["grace"], Preferences.model_validate({"default": {"email": False}}))
    burst = [
        AgentNotification(
            agent_id="deploy-agent",
            group=group,
            title="Deploy finished on production",
            channels=[ChannelName.email, ChannelName.slack],
        )
        for _ in range(3)
    ]
    handles = await asyncio.gather(*(chat.client.notify(n) for n in burst))
    outcomes = await asyncio.gather(*(h.outcome() for h in handles))

    [sent] = [o for o in outcomes if o.status is not NotificationStatus.suppressed_duplicate]
    assert [o.duplicate_of for o in outcomes if o is not sent] == [sent.notification_id] * 2
    assert sent.status is NotificationStatus.delivered and sent.group == group
    assert sent.user_id == f"group:{group}" and sent.members.keys() == set(users.values())
    channels = {user: m.channels for user, m in sent.members.items()}
    assert channels == {
        users["ada"]: [ChannelName.email],
        users["grace"]: [ChannelName.slack],
        users["linus"]: [ChannelName.email, ChannelName.slack],
    } or channels == {
        users["ada"]: [ChannelName.email],
        users["grace"]: [ChannelName.slack],
        users["linus"]: [ChannelName.slack, ChannelName.email],
    }
    for user, member in sent.members.items():
        assert member.notification_id == member_notification_id(sent.notification_id, user)
        assert member.status is NotificationStatus.delivered

    # Each member once: one email each to ada and linus, one Slack message each to grace and linus.
    await eventually(lambda: len(chat.sendgrid.requests) >= 2 and len(chat.slack.posted()) >= 2, "the messages")
    mailed = sorted(r.json()["personalizations"][0]["to"][0]["email"] for r in chat.sendgrid.requests)
    assert mailed == ["ada@example.com", "linus@example.com"]
    assert sorted(c.body["channel"] for c in chat.slack.posted()) == sorted([MEMBERS["grace"], MEMBERS["linus"]])


async def test_a_quorum_of_two_approvals_is_vetoed_by_a_first_deny(chat: Chat) -> None:
    group, users = await team(chat)
    question = group_question(group, quorum={"action": "approve", "count": 2})
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: len(chat.slack.posted()) == 3, "a Slack message to each member")

    denied = await click(chat, buttons_for(chat.slack, MEMBERS["ada"])["Deny"], member=MEMBERS["ada"])
    assert denied.status_code == 200, denied.text
    outcome = await asking

    assert outcome.status is NotificationStatus.answered
    assert outcome.decision is not None and outcome.decision.text == f"Denied by {users['ada']}"
    assert (outcome.decision.action_id, outcome.decision.by) == ("deny", [users["ada"]])
    [answer] = outcome.answers
    assert (answer.user_id, answer.action_id, answer.channel) == (users["ada"], "deny", AnswerChannel.slack)
    assert outcome.answer == answer
    assert outcome.members[users["ada"]].answer == answer
    for other in ("grace", "linus"):
        member = outcome.members[users[other]]
        assert member.status is NotificationStatus.answered and member.answer is None

    # Every member's message says the group decided, no button left; a late click is refused.
    await eventually(lambda: len(chat.slack.calls_to("chat.update")) >= 3, "the three messages' updates")
    for name in MEMBERS:
        assert _text(chat.slack, MEMBERS[name]) == outcome.decision.text
    late = await click(chat, buttons_for(chat.slack, MEMBERS["grace"])["Approve"], member=MEMBERS["grace"])
    assert late.json()["text"].startswith("Herald: not taken")


async def test_a_quorum_of_two_approvals_is_approved_by_two_and_the_third_message_updated(chat: Chat) -> None:
    group, users = await team(chat)
    question = group_question(group, quorum={"action": "approve", "count": 2})
    asking = asyncio.create_task(chat.client.ask(question))
    await eventually(lambda: len(chat.slack.posted()) == 3, "a Slack message to each member")

    ada = await click(chat, buttons_for(chat.slack, MEMBERS["ada"])["Approve"], member=MEMBERS["ada"])
    assert ada.status_code == 200, ada.text
    # One approval is not enough: still pending, ada's answer kept.
    await eventually(lambda: _answers(chat, question.notification_id), "ada's answer at the group")
    assert (await chat.client.get_handle(question.notification_id).status()).status is NotificationStatus.pending
    grace_id = member_notification_id(question.notification_id, users["grace"])
    await chat.client.respond(grace_id, "approve", users["grace"], AnswerChannel.api)
    outcome = await asking

    assert outcome.status is NotificationStatus.answered and outcome.decision is not None
    assert (outcome.decision.action_id, outcome.decision.by) == ("approve", [users["ada"], users["grace"]])
    assert outcome.decision.text == f"Approved by {users['ada']} and {users['grace']}"
    assert [(a.user_id, a.action_id, a.channel) for a in outcome.answers] == [
        (users["ada"], "approve", AnswerChannel.slack),
        (users["grace"], "approve", AnswerChannel.api),
    ]
    assert outcome.members[users["linus"]].answer is None

    # The third member's message is updated: the group approved.
    await eventually(lambda: _edited(chat.slack, MEMBERS["linus"]), "linus's message updated")
    assert _text(chat.slack, MEMBERS["linus"]) == outcome.decision.text
    shown = await chat.api.get(f"/v1/notifications/{question.notification_id}")
    assert shown.status_code == 200, shown.text
    assert [a["user_id"] for a in shown.json()["answers"]] == [users["ada"], users["grace"]]


async def _answers(chat: Chat, notification_id: str) -> bool:
    return bool((await chat.client.get_handle(notification_id).status()).answers)


def _edited(slack: FakeSlack, member: str) -> bool:
    return any(c.body.get("channel") == slack.dm_channel(member) for c in slack.calls_to("chat.update"))


async def test_a_notification_to_an_unknown_group_fails_saying_so(chat: Chat) -> None:
    """The API refuses an unknown group (422 naming `group`); one started past it (HeraldClient, or a group deleted
    meanwhile) ends `failed` with the reason, reaching nobody."""
    missing = f"gone-{uuid.uuid4().hex[:6]}"
    handle = await chat.client.notify(AgentNotification(agent_id="deploy-agent", group=missing, title="Anyone?"))
    outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.failed and outcome.members == {}
    assert outcome.group_error == f"no group {missing}" and outcome.user_id == f"group:{missing}"
    recorded = await chat.store.notifications.get_outcome(handle.notification_id)
    assert recorded is not None and recorded.group_error == outcome.group_error


async def test_a_rule_naming_a_group_notifies_each_member(chat: Chat) -> None:
    """An event matching a rule with `groups` starts one group notification, which reaches every member."""
    from herald.models import TriggerRule

    group, users = await team(chat)
    agent = f"disk-agent-{uuid.uuid4().hex[:6]}"
    rule = TriggerRule(
        name=f"disk-{uuid.uuid4().hex[:6]}",
        agent_id=agent,
        condition="disk_used > 0.9",
        groups=[group],
        channels=[ChannelName.email],
        cooldown_seconds=0,
    )
    await chat.store.rules.put_rule(rule)
    sent = await chat.api.post("/v1/events", json={"agent_id": agent, "metrics": {"disk_used": 0.95}})
    assert sent.status_code == 202, sent.text
    [fired] = sent.json()["fired"]
    [notification_id] = fired["notification_ids"]
    outcome = await chat.client.get_handle(notification_id).outcome()
    assert outcome.status is NotificationStatus.delivered and outcome.group == group
    assert {user: m.channels for user, m in outcome.members.items()} == {
        user: [ChannelName.email] for user in users.values()
    }
