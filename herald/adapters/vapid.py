"""VAPID keys (RFC 8292): generate a pair, read the private key from settings, derive the browser's key.

The private key is printed and stored as base64url of its raw 32-byte scalar, the form `web-push` and
pywebpush use; DER (base64url) and PEM are accepted as well. The public key is base64url of the
uncompressed P-256 point: what a page passes to `pushManager.subscribe({applicationServerKey})`.
Errors never echo the key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]


@dataclass(frozen=True)
class VapidKeys:
    private_key: str
    public_key: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (browsers drop it); also accepts standard base64."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def public_key_b64(public_key: ec.EllipticCurvePublicKey) -> str:
    point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


def generate_vapid_keys() -> VapidKeys:
    """A fresh P-256 pair: the private scalar and the application server key, both base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return VapidKeys(private_key=b64url(raw), public_key=public_key_b64(key.public_key()))


def load_private_key(private_key: str) -> ec.EllipticCurvePrivateKey:
    """Parse VAPID_PRIVATE_KEY (raw base64url, DER base64url or PEM); ValueError naming the setting otherwise."""
    text = private_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            data = b64url_decode("".join(text.split()))
            if len(data) == 32:
                key = ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, binascii.Error):
        raise ValueError(
            "VAPID_PRIVATE_KEY is not a P-256 private key (expected the output of `herald vapid generate`)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("VAPID_PRIVATE_KEY must be an EC P-256 key")
    return key


def vapid_signer(private_key: str) -> Vapid02:
    """A py_vapid signer for pywebpush, parsed once (pywebpush would otherwise test the key as a file path)."""
    return Vapid02(load_private_key(private_key))


def application_server_key(private_key: str) -> str:
    """The public key a browser subscribes with, derived from VAPID_PRIVATE_KEY."""
    return public_key_b64(load_private_key(private_key).public_key())
