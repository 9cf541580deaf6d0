"""/codec/encode and /codec/decode: Temporal's codec-server protocol (Payloads JSON, base64 bytes), CORS for the
Temporal UI's origins, and admin only when auth is on."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from herald.adapters.codec import CodecConfigError, CodecKey, EncryptionCodec
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.api.codec import allowed_origin, cors_headers
from herald.services.auth import issue_token
from tests.conftest import make_settings

K1 = CodecKey("k1", bytes(range(32)))
K2 = CodecKey("k2", bytes(range(100, 132)))
ADMIN_KEY = "admin-" + "c" * 40
UI = "http://localhost:8233"
PREFLIGHT = {
    "Origin": UI,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# What the UI and `temporal workflow show --codec-endpoint` send: a Payloads message as protobuf JSON.
PLAIN = {
    "payloads": [
        {
            "metadata": {"encoding": b64(b"json/plain")},
            "data": b64(b'{"title":"Card declined","to":"ada@example.com"}'),
        },
        {"metadata": {"encoding": b64(b"binary/null")}},
    ]
}


def as_payloads(body: dict[str, Any]) -> list[Payload]:
    return [json_format.ParseDict(p, Payload()) for p in body["payloads"]]


@pytest.fixture
async def open_api(store: Store, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """`herald dev`: auth off, HERALD_CODEC_KEYS with k2 first (encrypting) and k1 (older histories)."""
    app = create_app(make_settings(tmp_path, codec_keys=f"{K2.entry()},{K1.entry()}"), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as api:
        yield api


async def test_encode_then_decode_round_trips_the_protocol_json(open_api: httpx.AsyncClient) -> None:
    encoded = await open_api.post("/codec/encode", json=PLAIN, headers={"X-Namespace": "default"})
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["content-type"] == "application/json"
    sealed = encoded.json()["payloads"]
    assert len(sealed) == 2
    for payload in sealed:
        assert set(payload) == {"metadata", "data"}
        assert {k: base64.b64decode(v) for k, v in payload["metadata"].items()} == {
            "encoding": b"binary/encrypted",
            "encryption-key-id": b"k2",
        }
        assert b"ada@example.com" not in base64.b64decode(payload["data"])

    decoded = await open_api.post("/codec/decode", json=encoded.json(), headers={"X-Namespace": "default"})
    assert decoded.status_code == 200, decoded.text
    assert as_payloads(decoded.json()) == as_payloads(PLAIN)
    assert decoded.json()["payloads"][0] == PLAIN["payloads"][0]

    # `--codec-endpoint http://<api>/codec/{namespace}`: only the last segment counts.
    templated = await open_api.post("/codec/default/decode", json=encoded.json())
    assert templated.status_code == 200 and as_payloads(templated.json()) == as_payloads(PLAIN)


async def test_decode_reads_what_workers_wrote_with_any_listed_key(open_api: httpx.AsyncClient) -> None:
    """Payloads from the worker's codec, old key and new, as they sit in a history; plain ones pass through."""
    original = as_payloads(PLAIN)
    written = [*await EncryptionCodec([K1]).encode(original[:1]), *await EncryptionCodec([K2]).encode(original[1:])]
    body = {"payloads": [json_format.MessageToDict(p) for p in [*written, original[0]]]}
    response = await open_api.post("/codec/decode", json=body)
    assert response.status_code == 200, response.text
    assert as_payloads(response.json()) == [*original, original[0]]


async def test_bad_bodies_and_unknown_keys_are_400(open_api: httpx.AsyncClient) -> None:
    [from_k0] = await EncryptionCodec([CodecKey("k0", bytes(32))]).encode(as_payloads(PLAIN)[:1])
    response = await open_api.post("/codec/decode", json={"payloads": [json_format.MessageToDict(from_k0)]})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "codec_error",
        "message": "payload encrypted with key k0, which HERALD_CODEC_KEYS doesn't hold; add it back to read old histories",
        "field": "payloads",
    }
    for bad in (b"not json", b"[]", b'{"payloads": [{"data": 5}]}', b'{"payloads": {"data": "eA=="}}', b"\xff"):
        response = await open_api.post("/codec/decode", content=bad, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_payloads"


async def test_ui_origin_preflight_and_answers_carry_cors(open_api: httpx.AsyncClient) -> None:
    for path in ("/codec/decode", "/codec/encode", "/codec/default/decode"):
        preflight = await open_api.options(path, headers=PREFLIGHT)
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == UI
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"x-namespace", "authorization", "content-type"} <= allowed

    answer = await open_api.post("/codec/decode", json=PLAIN, headers={"Origin": "http://127.0.0.1:8233"})
    assert answer.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
    failed = await open_api.post("/codec/decode", content=b"nope", headers={"Origin": UI})
    assert failed.status_code == 400 and failed.headers["access-control-allow-origin"] == UI

    other = await open_api.options("/codec/decode", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    answer = await open_api.post("/codec/decode", json=PLAIN, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers
    # Other routes get no CORS from this: it is for the codec only.
    rules = await open_api.get("/v1/rules", headers={"Origin": UI})
    assert "access-control-allow-origin" not in rules.headers


async def test_herald_ui_origin_replaces_the_default(store: Store, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, codec_keys=K1.entry(), ui_origin="https://temporal.example.com/")
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        ok = await api.options("/codec/decode", headers={**PREFLIGHT, "Origin": "https://temporal.example.com"})
        assert ok.status_code == 204
        assert (await api.options("/codec/decode", headers=PREFLIGHT)).status_code == 403


async def test_with_auth_only_the_admin_key_may_use_the_codec(store: Store, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth=True, admin_key=ADMIN_KEY, codec_keys=K1.entry())
    app = create_app(settings, store=store)
    user = await issue_token(store, "user", "ada")
    agent = await issue_token(store, "agent", "support-agent")
    [sealed] = await EncryptionCodec([K1]).encode(as_payloads(PLAIN)[:1])
    body = {"payloads": [json_format.MessageToDict(sealed)]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        # The browser's preflight carries no token; it must pass so the real call can send one.
        assert (await api.options("/codec/decode", headers=PREFLIGHT)).status_code == 204
        for path in ("/codec/decode", "/codec/encode", "/codec/default/decode"):
            anonymous = await api.post(path, json=body, headers={"Origin": UI})
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert anonymous.headers["access-control-allow-origin"] == UI, "the UI can show why"
            for token in (user, agent, "not-a-token"):
                refused = await api.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
                assert refused.status_code in (401, 403), (path, refused.text)
                assert b"ada@example.com" not in refused.content
        admin = await api.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert admin.status_code == 200
        assert json.loads(base64.b64decode(admin.json()["payloads"][0]["data"]))["to"] == "ada@example.com"
        spec = (await api.get("/openapi.json")).json()["paths"]
        assert spec["/codec/decode"]["post"]["security"] == [{"HTTPBearer": []}]


async def test_without_keys_payloads_pass_through(store: Store, tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        for path in ("/codec/encode", "/codec/decode"):
            response = await api.post(path, json=PLAIN)
            assert response.status_code == 200 and as_payloads(response.json()) == as_payloads(PLAIN)


def test_a_broken_key_list_stops_the_app_at_startup(tmp_path: Path) -> None:
    with pytest.raises(CodecConfigError, match="HERALD_CODEC_KEYS entry 1"):
        create_app(make_settings(tmp_path, codec_keys="k1:c2hvcnQ="))


def test_cors_decisions() -> None:
    allowed = ["http://127.0.0.1:8233", "http://localhost:8233"]
    assert allowed_origin("http://localhost:8233/", allowed) == "http://localhost:8233"
    assert allowed_origin("http://localhost:8234", allowed) is None
    assert allowed_origin(None, allowed) is None
    assert "Access-Control-Allow-Headers" not in cors_headers(UI)
    preflight = cors_headers(UI, preflight=True, requested_headers="x-namespace, Caller-Type")
    assert preflight["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Namespace, Caller-Type"
