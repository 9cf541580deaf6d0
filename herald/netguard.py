"""SSRF guard: Herald posts to URLs users give it, so outside dev mode it refuses internal addresses.

A webhook URL that resolves to loopback, a private network, link-local (cloud metadata lives there) or
any other non-public address would let a user make Herald probe its own network. The check runs when the
URL is saved (a clear error then) and again before each send (DNS can change in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    """The URL may not be used; the message says why, without echoing the URL."""


NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def forbidden_reason(address: str) -> str | None:
    """Why Herald must not connect to this IP address, or None when it is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:  # fec0::/10: deprecated, still routed inside some networks
            return "non-public"
        # An IPv4 address inside IPv6 (mapped, 6to4, NAT64) reaches that IPv4 address: judge it instead.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "non-public"
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or not ip.is_global:
        return "non-public"
    return None


async def check_public_url(url: str) -> None:
    """Raise UnsafeURL unless every address the URL's host resolves to is public."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise UnsafeURL("has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL("has a host name that does not resolve") from exc
    for *_, sockaddr in infos:
        reason = forbidden_reason(str(sockaddr[0]))
        if reason is not None:
            raise UnsafeURL(
                f"resolves to a {reason} address; Herald only posts to public addresses "
                "(set HERALD_ALLOW_PRIVATE_WEBHOOKS=1 for a receiver on your own network)"
            )
