"""A push service (RFC 8030) on 127.0.0.1: records every POST, answers from a script, else 201 with a Location.

Also the browser's side of a subscription: a real P-256 key pair and auth secret, so a test can decrypt what
the push service received exactly as the browser would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from herald.models import PushSubscription
from tests.fakes.http import read_body, start_fake

HANG = -1  # a scripted "status" that never answers (until the fake stops), for timeouts


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakePushService:
    """Each path answers from its script in turn, then 201 forever; every request is recorded."""

    scripts: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=lambda: defaultdict(list))
    requests: list[PushRequest] = field(default_factory=list)
    port: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, *replies: int | tuple[int, dict[str, str]]) -> str:
        """A fresh subscription endpoint on this service, answering with `replies` first."""
        path = f"/wpush/v2/{uuid.uuid4().hex}"
        self.scripts[path] = [r if isinstance(r, tuple) else (r, {}) for r in replies]
        return self.origin + path

    def received(self, endpoint: str) -> list[PushRequest]:
        path = endpoint.removeprefix(self.origin)
        return [r for r in self.requests if r.path == path]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"]
        self.requests.append(PushRequest(path, {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body))
        script = self.scripts.get(path) or []
        status, headers = script.pop(0) if script else (201, {})
        if status == HANG:
            await self._release.wait()
            return
        if 200 <= status < 300 and "location" not in {k.lower() for k in headers}:
            headers = {**headers, "Location": f"{self.origin}/m/{len(self.requests)}"}
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def push_service() -> AsyncIterator[FakePushService]:
    fake = FakePushService()
    server, task, fake.port = await start_fake(fake)
    try:
        yield fake
    finally:
        fake._release.set()
        server.should_exit = True
        await task


@dataclass
class Browser:
    """One browser's subscription keys: the receiving half of RFC 8291."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def subscription(self, endpoint: str) -> PushSubscription:
        """What `PushSubscription.toJSON()` gives in the browser."""
        return PushSubscription.model_validate(
            {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}
        )

    def decrypt(self, body: bytes) -> Any:
        plain = http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)


@dataclass(frozen=True)
class VapidAuth:
    """A verified `Authorization: vapid t=<jwt>,k=<key>` header."""

    header: dict[str, Any]
    claims: dict[str, Any]
    public_key: str


def verify_vapid(authorization: str) -> VapidAuth:
    """Check the JWT's ES256 signature with the key in `k` (RFC 8292); AssertionError if anything is off."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization[:10]
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert set(parts) == {"t", "k"}
    header_b64, claims_b64, signature_b64 = parts["t"].split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    signature = unb64url(signature_b64)
    assert len(signature) == 64
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("the VAPID JWT signature does not verify") from None
    return VapidAuth(json.loads(unb64url(header_b64)), json.loads(unb64url(claims_b64)), parts["k"])
