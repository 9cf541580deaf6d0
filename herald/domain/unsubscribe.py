"""One-click unsubscribe (RFC 8058) for every email, decided here without Temporal or HTTP.

Each email carries a signed, expiring link (`List-Unsubscribe` and the body's footer) that turns email from
that agent off in the person's preferences; the digest's link turns the digest off. The link is signed with
the answer links' secret (HERALD_ANSWER_SECRET) under its own context, so an answer link never works as an
unsubscribe link or the other way round, and it holds only ids and an expiry: the user id, the agent id (none
for the digest) and when it stops working. Using it twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from herald.domain.answers import AnswerLinks, TokenError, sign_claims, verify_claims
from herald.domain.digest import DIGEST_AGENT
from herald.models import AgentNotification, ChannelName, ChannelPreference, DigestCadence, Preferences, Priority
from herald.models.users import ChannelSwitches

UNSUBSCRIBE_VERSION = 1
_CONTEXT = b"herald-unsubscribe-link-v1"
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
# RFC 8058: the header that tells a mail client it may POST `List-Unsubscribe=One-Click` to the link itself.
ONE_CLICK_POST = f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}"


@dataclass(frozen=True)
class UnsubscribeToken:
    """What an unsubscribe link stands for: whose email, from which agent (None: the digest), until when."""

    user_id: str
    agent_id: str | None
    expires_at: int  # epoch seconds


def scope_of(notification: AgentNotification) -> str | None:
    """The agent an email's link unsubscribes from; None for the digest, whose link turns the digest off."""
    return None if notification.agent_id == DIGEST_AGENT else notification.agent_id


def sign_unsubscribe(secret: bytes, token: UnsubscribeToken) -> str:
    claims: dict[str, object] = {"v": UNSUBSCRIBE_VERSION, "u": token.user_id, "e": token.expires_at}
    if token.agent_id is not None:
        claims["g"] = token.agent_id
    return sign_claims(secret, claims, _CONTEXT)


def verify_unsubscribe(secret: bytes, raw: str, now: datetime) -> UnsubscribeToken:
    """The link's content if its signature holds and it has not expired; else TokenError saying which."""
    claims = verify_claims(secret, raw, _CONTEXT, "unsubscribe link")
    try:
        token = UnsubscribeToken(
            user_id=str(claims["u"]),
            agent_id=str(claims["g"]) if "g" in claims else None,
            expires_at=int(claims["e"]),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenError("malformed", "this unsubscribe link is not one Herald made") from None
    if claims.get("v") != UNSUBSCRIBE_VERSION:
        raise TokenError("malformed", "this unsubscribe link comes from another Herald version")
    if now.timestamp() >= token.expires_at:
        raise TokenError("expired", "this unsubscribe link has expired: change your preferences instead")
    return token


def unsubscribe_url(links: AnswerLinks, notification: AgentNotification, now: datetime) -> str:
    """The email's one-click link, `{api_url}/v1/unsubscribe/<token>`, valid for the links' unsubscribe window."""
    expires = int(now.timestamp() + links.unsubscribe_window_seconds)
    token = UnsubscribeToken(notification.recipient, scope_of(notification), expires)
    return f"{links.base_url.rstrip('/')}/v1/unsubscribe/{sign_unsubscribe(links.secret, token)}"


def what_it_stops(agent_id: str | None, priority: Priority | None = None) -> str:
    """What the link turns off, said where the person chooses: in the email's footer and on the page."""
    if agent_id is None:
        return "this digest (low-priority notifications then arrive one by one, as your preferences say)"
    if priority is Priority.critical:
        return (
            f"all email from agent {agent_id}, critical alerts like this one included "
            "(they still reach you on your other channels)"
        )
    return f"email from agent {agent_id}"


def unsubscribed(preferences: Preferences, agent_id: str | None) -> Preferences:
    """The preferences with the agent's email turned off (its other settings kept), or the digest off."""
    if agent_id is None:
        if preferences.digest is None or preferences.digest.cadence is DigestCadence.off:
            return preferences
        digest = preferences.digest.model_copy(update={"cadence": DigestCadence.off})
        return preferences.model_copy(update={"digest": digest})
    entry = preferences.agents.get(agent_id, ChannelSwitches())
    current = entry.email
    email: bool | ChannelPreference = (
        current.model_copy(update={"enabled": False}) if isinstance(current, ChannelPreference) else False
    )
    agents = {**preferences.agents, agent_id: entry.model_copy(update={ChannelName.email.value: email})}
    return preferences.model_copy(update={"agents": agents})
