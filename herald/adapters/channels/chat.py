"""One-way chat through Apprise: Teams (workflows://), Discord, Google Chat, Mattermost, Rocket.Chat, ntfy, Pushover...

The contact's `chat_urls` are Apprise URLs, and each holds the service's token: they never reach a log, an error
message or Temporal history (the contact is read from the store inside the delivery activity). Each URL gets one
send of the title, the priority and the plain-text body with the notification's link. Apprise reports success or
failure only, so a failure is transient (retried, then the fallback); a URL Apprise cannot load, or whose scheme
is no longer allowed (HERALD_CHAT_SCHEMES), is permanent. The notification is delivered when at least one URL
took it. Outside dev mode every connection Apprise's plugins open goes through the SSRF guard
(herald/adapters/netguard.py: public addresses only, the connection pinned to the checked address).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Sequence

from apprise import Apprise, AppriseAsset, NotifyFormat, NotifyType
from apprise.plugins.base import NotifyBase

from herald.adapters.channels.base import OutboundMessage, SendResult
from herald.adapters.netguard import public_only_connections
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName, Priority
from herald.models.users import chat_url_scheme

# Apprise and its plugins log what they send and where (a webhook's path is its token): its logger is off, and
# urllib3's (under requests, which the plugins use) drops what it logs during a chat send. Herald logs each
# attempt itself (herald/services/delivery.py), by channel and error type.
# (A level and a filter, not `disabled`: logging.config.dictConfig, which uvicorn runs, resets `disabled`.)
_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.setLevel(logging.CRITICAL + 1)
_APPRISE_LOG.addFilter(lambda _record: False)
_SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("herald_chat_sending", default=False)


def _not_while_sending(_record: logging.LogRecord) -> bool:
    return not _SENDING.get()  # the worker thread Apprise sends from runs in a copy of the sender's context


for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "urllib3.response"):
    logging.getLogger(_name).addFilter(_not_while_sending)

_NOTIFY_TYPE = {
    Priority.low: NotifyType.INFO,
    Priority.medium: NotifyType.INFO,
    Priority.high: NotifyType.WARNING,
    Priority.critical: NotifyType.FAILURE,
}


def _asset() -> AppriseAsset:
    # No templates ({{...}} in an agent's text stays text), no state on disk, privacy in whatever Apprise says.
    return AppriseAsset(allow_templates=False, storage_mode="memory", secure_logging=True)


def load(url: str) -> NotifyBase | None:
    """The Apprise service for `url`, or None when Apprise cannot parse or load it (its reason is not kept)."""
    try:
        return Apprise.instantiate(url, asset=_asset(), suppress_exceptions=True)
    except Exception:  # a plugin's own error on a strange URL: still "cannot load", never its text
        return None


def url_problem(url: str, allowed: Callable[[str], bool]) -> str | None:
    """Why `url` may not be saved as a chat URL (no part of it in the reason), or None."""
    scheme = chat_url_scheme(url)
    if not allowed(scheme):
        return f"uses the scheme {scheme}://, which this server does not allow (HERALD_CHAT_SCHEMES)"
    if load(url) is None:
        return "is not an Apprise URL this server can load (check the service's URL format)"
    return None


# Schemes whose URL names the server it posts to as its host (a self-hosted service, or any receiver). Elsewhere the
# host is a token or an id (discord://<webhook id>/..., pover://<user>@<token>) and the service's own server is
# fixed. The save-time check of these hosts is for a clear error; the guard on every connection is the one that holds.
SERVER_HOST_SCHEMES = frozenset(
    {
        "json",
        "jsons",
        "xml",
        "xmls",
        "form",
        "forms",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "gotify",
        "gotifys",
        "ntfy",
        "ntfys",
        "matrix",
        "matrixs",
    }
)


def server_host(url: str) -> tuple[str, int] | None:
    """The server a chat URL posts to, as Apprise parsed it, when its scheme names one (SERVER_HOST_SCHEMES)."""
    scheme = chat_url_scheme(url)
    if scheme not in SERVER_HOST_SCHEMES:
        return None
    service = load(url)
    host = getattr(service, "host", None)
    if not isinstance(host, str) or not host:
        return None  # e.g. ntfys://<topic>: the public ntfy.sh
    port = getattr(service, "port", None)
    return host, port if isinstance(port, int) else (443 if service is not None and service.secure else 80)


def chat_text(message: OutboundMessage, link: str | None) -> tuple[str, str]:
    """The title and the plain-text body: the priority first, then the agent's text, then the link."""
    n = message.notification
    parts = [f"Priority: {n.priority.value}"]
    if n.body:
        parts.append(n.body)
    if link:
        parts.append(link)
    return n.title, "\n\n".join(parts)


class ChatChannel:
    name = ChannelName.chat

    def __init__(
        self,
        *,
        allowed: Callable[[str], bool],
        link: Callable[[OutboundMessage], str | None],
        timeout: float = 10.0,
        allow_private: bool = False,
    ) -> None:
        self._allowed = allowed
        self._link = link
        self._timeout = timeout
        self._allow_private = allow_private

    async def send(self, message: OutboundMessage) -> SendResult:
        urls: Sequence[str] = message.contact.chat_urls or []
        if not urls:
            raise ContactMissing("the user has no chat URL on file")
        title, body = chat_text(message, self._link(message))
        timeout = message.provider_timeout(self._timeout)
        delivered = 0
        transient: TransientDeliveryError | None = None
        permanent: PermanentDeliveryError | None = None
        for index, url in enumerate(urls):
            try:
                await self._send_one(index, url, title, body, message.notification.priority, timeout)
                delivered += 1
            except TransientDeliveryError as exc:
                transient = transient or exc
            except PermanentDeliveryError as exc:
                permanent = permanent or exc
        if delivered:
            return SendResult(provider_message_id=f"apprise:{delivered}/{len(urls)}")
        raise transient or permanent or TransientDeliveryError("no chat URL took the message", type_name="ChatFailed")

    async def _send_one(self, index: int, url: str, title: str, body: str, priority: Priority, timeout: float) -> None:
        """One send to one URL; the URL's index (never the URL) names it in an error."""
        scheme = chat_url_scheme(url)
        if not self._allowed(scheme):
            raise PermanentDeliveryError(
                f"chat URL {index} uses the scheme {scheme}://, which this server no longer allows",
                type_name="ChatSchemeRefused",
            )
        service = load(url)
        if service is None:
            raise PermanentDeliveryError(
                f"chat URL {index} ({scheme}://) could not be loaded by Apprise", type_name="ChatUrlInvalid"
            )
        # The plugin's own socket timeouts and Apprise's call deadline both fit inside this send's budget.
        service.socket_connect_timeout = min(service.socket_connect_timeout, timeout)
        service.socket_read_timeout = timeout
        apprise = Apprise(asset=service.asset)
        apprise.add(service)
        notify_type = _NOTIFY_TYPE[priority]
        sending = _SENDING.set(True)
        try:
            ok, refused = await self._notify(apprise, title, body, notify_type, timeout)
        finally:
            _SENDING.reset(sending)
        if ok:
            return
        if refused is not None:
            raise PermanentDeliveryError(f"chat URL {index} ({scheme}://) {refused}", type_name="ChatUrlRefused")
        raise TransientDeliveryError(
            f"chat URL {index} ({scheme}://): the service did not take the message", type_name="ChatUnavailable"
        )

    async def _notify(
        self, apprise: Apprise, title: str, body: str, notify_type: NotifyType, timeout: float
    ) -> tuple[bool, str | None]:
        """Apprise's verdict, and what the SSRF guard refused (outside dev mode) if anything."""
        if self._allow_private:
            refused = None
            ok = await apprise.async_notify(
                body=body, title=title, notify_type=notify_type, body_format=NotifyFormat.TEXT, timeout=timeout
            )
        else:
            with public_only_connections() as report:
                ok = await apprise.async_notify(
                    body=body, title=title, notify_type=notify_type, body_format=NotifyFormat.TEXT, timeout=timeout
                )
            refused = report.refused
        return bool(ok), refused
