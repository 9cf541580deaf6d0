"""The SSRF guard's verdict on addresses, on URLs through the real resolver, and on the connections it opens."""

from __future__ import annotations

import uuid

import pytest

from herald.adapters.netguard import UnsafeURL, check_public_url, forbidden_reason, outbound_client
from tests.fakes.http import FakeHTTPServer


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:192.168.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("2002:a9fe:a9fe::", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
        ("fec0::1", "non-public"),  # site-local
        ("0.0.0.0", "non-public"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "non-public"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("93.184.215.14", None),
    ],
)
def test_forbidden_reason(address: str, reason: str | None) -> None:
    assert forbidden_reason(address) == reason


async def test_check_public_url_resolves_names() -> None:
    with pytest.raises(UnsafeURL, match="loopback"):
        await check_public_url("http://localhost:8080/hook")
    with pytest.raises(UnsafeURL, match="does not resolve"):
        await check_public_url("https://host.invalid/hook")
    with pytest.raises(UnsafeURL, match="no host"):
        await check_public_url("http:///hook")
    # A literal public address needs no DNS and passes; nothing is contacted.
    await check_public_url("https://93.184.215.14/hook")


async def test_a_connection_goes_only_to_the_answer_that_was_checked(fake_http: FakeHTTPServer) -> None:
    """DNS rebinding: the name is resolved once per connection, and that answer is both checked and used.

    `rebind.test` exists only in this resolver, so the refusal can only come from checking the answer the
    connection would have used, and the receiver at that address gets nothing.
    """
    p = f"/rebind-{uuid.uuid4().hex[:8]}"
    fake_http.script(p, 200)
    asked: list[tuple[str, int]] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.1"]

    client = outbound_client(timeout=2.0, allow_private=False, resolver=rebinding)
    try:
        with pytest.raises(UnsafeURL, match="resolves to a loopback address"):
            await client.post(f"http://rebind.test:{fake_http.port}{p}", content=b"{}")
    finally:
        await client.aclose()
    assert asked == [("rebind.test", fake_http.port)] and fake_http.received(p) == []


async def test_dev_mode_posts_to_this_machine(fake_http: FakeHTTPServer) -> None:
    """With private addresses allowed (herald dev), the same client reaches a receiver on 127.0.0.1."""
    p = f"/dev-{uuid.uuid4().hex[:8]}"
    url = fake_http.script(p, 204)
    client = outbound_client(timeout=2.0, allow_private=True)
    try:
        response = await client.post(url, content=b'{"hook": 1}')
    finally:
        await client.aclose()
    assert response.status_code == 204 and [r.body for r in fake_http.received(p)] == [b'{"hook": 1}']
