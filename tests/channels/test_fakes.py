"""The loopback fakes behave like a provider's server where the fault tests lean on it."""

from __future__ import annotations

import asyncio

from tests.fakes.http import FakeHTTPServer, start_fake


async def _send_raw(port: int, data: bytes) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_request_cut_off_mid_body_never_reaches_the_fake() -> None:
    """A sender killed mid-request (the worker SIGKILL tests) leaves half a body: no server acts on that."""
    fake = FakeHTTPServer()
    server, task, fake.port = await start_fake(fake)
    try:
        head = b"POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        await _send_raw(fake.port, head + b'content-length: 40\r\n\r\n{"half": ')
        await _send_raw(fake.port, head + b'content-length: 11\r\n\r\n{"whole":1}')
        for _ in range(200):
            if fake.requests:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the cut-off one had its chance to be recorded too
        assert [request.body for request in fake.requests] == [b'{"whole":1}']
    finally:
        server.should_exit = True
        await task
