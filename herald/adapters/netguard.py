"""SSRF guard: Herald posts to URLs users give it, so outside dev mode it refuses internal addresses.

A webhook URL that resolves to loopback, a private network, link-local (cloud metadata lives there) or
any other non-public address would let a user make Herald probe its own network. The check runs when the
URL is saved (a clear error then) and again for every connection Herald opens to it: `outbound_client`
resolves the name once, checks every address, and connects only to a checked one. Checking and then letting
the HTTP client resolve the name again would let a name that changes its answer in between (DNS rebinding)
through.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import ipaddress
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx


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


# host, port -> the IP addresses to try, in order.
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for host, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))


async def public_addresses(host: str, port: int, resolver: Resolver = resolve) -> list[str]:
    """host's addresses, or UnsafeURL when it does not resolve or any of its addresses is not public."""
    try:
        addresses = await resolver(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL("has a host name that does not resolve") from exc
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None:
            raise UnsafeURL(
                f"resolves to a {reason} address; Herald only posts to public addresses "
                "(set HERALD_ALLOW_PRIVATE_WEBHOOKS=1 for a receiver on your own network)"
            )
    return addresses


async def check_public_url(url: str) -> None:
    """Raise UnsafeURL unless every address the URL's host resolves to is public; also for a URL that can't be
    split (`http://[x`, a port out of range), which urlsplit refuses with a bare ValueError."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UnsafeURL("is not a valid URL") from None
    if not host:
        raise UnsafeURL("has no host")
    await public_addresses(host, port or (443 if parts.scheme == "https" else 80))


async def check_public_host(host: str, port: int = 443) -> None:
    """Raise UnsafeURL unless every address `host` resolves to is public (a service named by host, not by URL)."""
    await public_addresses(host, port)


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses it checked a moment before, from the same DNS answer.

    TLS is unaffected: httpcore verifies the certificate against the URL's host name, not the address.
    """

    def __init__(self, resolver: Resolver = resolve) -> None:
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: httpcore.ConnectError | None = None
        for address in await public_addresses(host, port, self._resolver):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("is a Unix socket; Herald only posts to public addresses")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def tls_context(*, trust_env: bool = True) -> ssl.SSLContext:
    """One CA bundle load per process, shared by every client Herald makes.

    httpx loads certifi's bundle for each client it builds (about 20 ms of CPU), and Herald builds one per
    callback; a context is safe to share between clients and threads. `trust_env` reads SSL_CERT_FILE and
    SSL_CERT_DIR, as httpx does by default.
    """
    return httpx.create_ssl_context(trust_env=trust_env)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool built on PublicOnlyBackend."""

    def __init__(self, resolver: Resolver = resolve) -> None:
        ssl_context = tls_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx takes no network backend of its own; its pool (httpcore's) does, so this one replaces it.
        self._pool = httpcore.AsyncConnectionPool(ssl_context=ssl_context, network_backend=PublicOnlyBackend(resolver))


def outbound_client(*, timeout: float, allow_private: bool, resolver: Resolver = resolve) -> httpx.AsyncClient:
    """The client for URLs that users and agents give Herald (webhooks, callbacks).

    It follows no redirects: a receiver could otherwise bounce Herald to an internal address. Outside dev mode
    (`allow_private` off), every connection goes through PublicOnlyBackend, and proxies from the environment
    are ignored, since a proxy would resolve the name beyond the guard. A refused address raises UnsafeURL
    from the request.
    """
    if allow_private:
        return httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=tls_context())
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=PublicOnlyTransport(resolver)
    )


# --- Libraries that connect through urllib3 in a worker thread (Apprise's plugins, over requests) -------------------
#
# Their HTTP client is not Herald's, so the guard goes one level down: while a `public_only_connections()` block is
# active in the current context (Apprise copies the context into the thread that sends), urllib3's
# create_connection resolves the name once, checks every address, and connects only to a checked address, by
# number. TLS still verifies the certificate against the URL's host name (urllib3 passes it separately as SNI).
# Proxies from the environment lead to the proxy's address, which is checked like any other.


class RefusedAddress(OSError):
    """A connection the guard would not open; an OSError, so the library handles it as a failed connection."""


@dataclass
class GuardReport:
    """What the guard refused inside one block: the reason (no address, no URL), or None."""

    refused: str | None = None


_GUARD: contextvars.ContextVar[GuardReport | None] = contextvars.ContextVar("herald_netguard", default=None)
_original_create_connection: Callable[..., socket.socket] | None = None


def _guarded_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
    assert _original_create_connection is not None
    report = _GUARD.get()
    if report is None:
        return _original_create_connection(address, *args, **kwargs)
    host, port = address
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        report.refused = "has a host name that does not resolve"
        raise RefusedAddress(report.refused) from None
    addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))
    for checked in addresses:
        reason = forbidden_reason(checked)
        if reason is not None:
            report.refused = f"resolves to a {reason} address; Herald only posts to public addresses"
            raise RefusedAddress(report.refused)
    last: OSError | None = None
    for checked in addresses:
        try:
            return _original_create_connection((checked, port), *args, **kwargs)
        except OSError as exc:
            last = exc
    raise last or OSError("no address")


def _install_urllib3_guard() -> None:
    global _original_create_connection
    from urllib3.util import connection

    if _original_create_connection is None:
        _original_create_connection = connection.create_connection
        connection.create_connection = _guarded_create_connection


@contextlib.contextmanager
def public_only_connections() -> Iterator[GuardReport]:
    """Within the block (and threads started with a copy of its context), urllib3 connects to public addresses only."""
    _install_urllib3_guard()
    report = GuardReport()
    token = _GUARD.set(report)
    try:
        yield report
    finally:
        _GUARD.reset(token)
