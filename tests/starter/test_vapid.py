"""`herald vapid generate` prints a pair that signs real Web Push requests, and the key formats Herald reads."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.webpush import WebPushSender
from herald.adapters.store import Store
from herald.adapters.vapid import application_server_key, b64url, load_private_key
from herald.models import AgentNotification, ChannelName, Contact
from tests.fakes.webpush import Browser, push_service, unb64url, verify_vapid
from tests.starter.cli import clean_env, run_cli


async def vapid_generate() -> tuple[dict[str, str], str]:
    code, out, err = await run_cli(clean_env(), "vapid", "generate")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, lines
    return dict(line.split("=", 1) for line in lines), err


async def test_generated_keys_sign_a_push_the_service_can_verify(tmp_path: Path) -> None:
    printed, hint = await vapid_generate()
    assert set(printed) == {"VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"}
    assert "VAPID_SUBJECT" in hint
    private, public = printed["VAPID_PRIVATE_KEY"], printed["VAPID_PUBLIC_KEY"]

    # The public key is the private key's own point, uncompressed, as browsers want for applicationServerKey.
    key = ec.derive_private_key(int.from_bytes(unb64url(private), "big"), ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert unb64url(public) == point and len(point) == 65 and point[0] == 4

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    sender = WebPushSender(private, book=store.users, subject="https://herald.test", allow_private=True)
    try:
        async with push_service() as service:
            endpoint = service.endpoint()
            browser = Browser()
            await store.users.add_push_subscription("ada", browser.subscription(endpoint))
            n = AgentNotification(agent_id="monitor", user_id="ada", title="Disk full")
            await sender.send(OutboundMessage(n, ChannelName.push, f"{n.workflow_id}/push", Contact()))
            [request] = service.received(endpoint)
    finally:
        await sender.aclose()
        await store.close()
    vapid = verify_vapid(request.headers["authorization"])
    assert vapid.public_key == public
    assert vapid.claims["sub"] == "https://herald.test" and vapid.claims["aud"] == service.origin
    assert browser.decrypt(request.body)["title"] == "Disk full"


async def test_each_run_prints_a_new_pair() -> None:
    first, _ = await vapid_generate()
    second, _ = await vapid_generate()
    assert first["VAPID_PRIVATE_KEY"] != second["VAPID_PRIVATE_KEY"]


def test_der_and_pem_private_keys_are_read_too() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    der = b64url(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    sec1 = b64url(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for text in (raw, raw + "=", der, sec1, pem.decode()):
        assert application_server_key(text) == b64url(point)


# Ids are fixed: a random value in an id differs between xdist workers, which then refuse to run.
@pytest.mark.parametrize(
    "text",
    ["", "not a key", b64url(b"\x01" * 31), b64url(uuid.uuid4().bytes * 4)],
    ids=["empty", "words", "31-bytes", "random-64-bytes"],
)
def test_a_bad_private_key_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError, match="VAPID_PRIVATE_KEY") as caught:
        load_private_key(text)
    assert not text or text not in str(caught.value)


def test_a_key_on_another_curve_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    der = b64url(
        other.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(ValueError, match="P-256"):
        load_private_key(der)
