"""The payload codec: AES-GCM round trips, rotation by key id, clear errors that never carry key material,
the dev key file and `herald codec generate`."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

from herald.adapters.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecConfigError,
    CodecError,
    CodecKey,
    EncryptionCodec,
    MissingCodecKey,
    NoKeyCodec,
    UnknownCodecKey,
    codec_data_converter,
    codec_for,
    codec_from_keys,
    find_codec_keys,
    load_or_create_key_file,
    new_codec_key,
    parse_codec_keys,
)
from herald.config import Settings
from herald.models import AgentNotification
from herald_cli.dev import CODEC_KEY_FILE, DevPorts, dev_codec_settings, temporal_command
from tests.conftest import make_settings
from tests.starter.cli import clean_env, run_cli

K1 = CodecKey("k1", bytes(range(32)))
K2 = CodecKey("k2", bytes(range(100, 132)))
NOTE = AgentNotification(
    agent_id="support-agent",
    user_id="ada",
    title="Your card ending 4242 was declined",
    body="Write to ada@example.com or call +14155550123",
)


def payload_of(value: object) -> Payload:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([value])
    return payload


async def test_round_trip_hides_the_content_and_restores_it() -> None:
    codec = EncryptionCodec([K1])
    original = payload_of(NOTE)
    [sealed] = await codec.encode([original])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert set(sealed.metadata) == {"encoding", KEY_ID_METADATA}, "the inner encoding is encrypted too"
    for secret in (NOTE.title, "ada@example.com", "+14155550123", "json/plain"):
        assert secret.encode() not in sealed.data
    [again] = await codec.encode([original])
    assert again.data != sealed.data, "a fresh nonce every time"

    [opened] = await codec.decode([sealed])
    assert opened == original
    [restored] = pydantic_data_converter.payload_converter.from_payloads([opened], [AgentNotification])
    assert restored == NOTE


async def test_unencrypted_payloads_decode_as_they_are() -> None:
    """Histories written before the keys were set stay readable."""
    plain = payload_of({"title": "before encryption"})
    assert await EncryptionCodec([K1]).decode([plain]) == [plain]


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    before = EncryptionCodec([K1])
    [old] = await before.encode([payload_of("written with k1")])

    after = EncryptionCodec(parse_codec_keys(f"{K2.entry()},{K1.entry()}"))
    assert (after.key_id, after.key_ids) == ("k2", ["k2", "k1"])
    [new] = await after.encode([payload_of("written with k2")])
    assert new.metadata[KEY_ID_METADATA] == b"k2"

    assert await after.decode([old, new]) == [payload_of("written with k1"), payload_of("written with k2")]
    # Dropping k1 too soon makes old histories unreadable, and the error says which key to bring back.
    with pytest.raises(UnknownCodecKey) as caught:
        await EncryptionCodec([K2]).decode([old])
    assert str(caught.value) == (
        "payload encrypted with key k1, which HERALD_CODEC_KEYS doesn't hold; add it back to read old histories"
    )
    assert caught.value.key_id == "k1"


async def test_tampered_payloads_fail_authentication() -> None:
    codec = EncryptionCodec([K1, K2])
    [sealed] = await codec.encode([payload_of(NOTE)])

    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:8])
    same_id_other_key = EncryptionCodec([CodecKey("k1", bytes(32))])

    for codec_, bad in ((codec, flipped), (codec, relabelled), (codec, truncated), (same_id_other_key, sealed)):
        with pytest.raises(CodecError, match="failed authentication") as caught:
            await codec_.decode([bad])
        assert "key k1" in str(caught.value) or "key k2" in str(caught.value)

    unlabelled = Payload(metadata={"encoding": ENCODING}, data=sealed.data)
    with pytest.raises(CodecError, match="carries no encryption-key-id"):
        await codec.decode([unlabelled])


def test_parse_accepts_the_documented_format_and_its_variants() -> None:
    urlsafe_unpadded = base64.urlsafe_b64encode(K2.key).decode().rstrip("=")
    keys = parse_codec_keys(f" {K1.entry()} , k2:{urlsafe_unpadded}")
    assert keys == [K1, K2]
    assert "key=" not in repr(K1) and base64.b64encode(K1.key).decode() not in repr(keys)


KEY_TEXT = base64.b64encode(bytes(range(200, 232))).decode()
SHORT_KEY = base64.b64encode(b"sixteen-byte-key").decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "HERALD_CODEC_KEYS is set but holds no key"),
        (" , ", "HERALD_CODEC_KEYS is set but holds no key"),
        (KEY_TEXT, "HERALD_CODEC_KEYS entry 1 is not keyid:base64key"),
        (f"k1:{KEY_TEXT},,k2:{KEY_TEXT}", "HERALD_CODEC_KEYS entry 2 is empty"),
        (f"{KEY_TEXT}:k1", "HERALD_CODEC_KEYS entry 1: the key id must be"),
        (f"k1:{KEY_TEXT},k 2:{KEY_TEXT}", "HERALD_CODEC_KEYS entry 2: the key id must be"),
        (f"k1:{KEY_TEXT}!", "HERALD_CODEC_KEYS entry 1 (key k1): the key is not valid base64"),
        (f"k1:{SHORT_KEY}", "HERALD_CODEC_KEYS entry 1 (key k1): the key is 16 bytes; it must be 32"),
        (f"k1:{KEY_TEXT},k1:{KEY_TEXT}", "HERALD_CODEC_KEYS entry 2: key id k1 appears more than once"),
    ],
    ids=["empty", "commas", "no-id", "empty-entry", "swapped", "bad-id", "bad-base64", "short", "duplicate"],
)
def test_parse_errors_name_the_variable_and_never_the_key(text: str, problem: str) -> None:
    with pytest.raises(CodecConfigError) as caught:
        parse_codec_keys(text)
    message = str(caught.value)
    assert message.startswith(problem), message
    for secret in (KEY_TEXT, KEY_TEXT[:12], SHORT_KEY, SHORT_KEY[:12]):
        assert secret not in message and secret not in repr(caught.value)
    # No chained exception shows the key either (a traceback would print it).
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)


def test_settings_read_the_keys_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_CODEC_KEYS", K1.entry())
    settings = Settings()
    assert K1.entry() not in repr(settings)
    codec = codec_from_keys(settings.temporal.codec_keys)
    assert codec is not None and codec.key_id == "k1"
    monkeypatch.setenv("HERALD_CODEC_KEYS", "k1:short")
    with pytest.raises(CodecConfigError, match="HERALD_CODEC_KEYS entry 1"):
        codec_from_keys(Settings().temporal.codec_keys)


def test_unset_keys_mean_no_codec_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    import herald.adapters.codec

    herald.adapters.codec._warned_unencrypted = False
    with caplog.at_level("WARNING", logger="herald.codec"):
        assert codec_from_keys(None) is None
        assert codec_from_keys(None) is None
    assert [r.getMessage() for r in caplog.records].count(
        "HERALD_CODEC_KEYS is unset: workflow inputs and results reach Temporal unencrypted; "
        "`herald codec generate` makes a key"
    ) == 1


async def test_data_converter_encrypts_payloads_and_failures_only_with_a_codec() -> None:
    assert codec_data_converter(None) is pydantic_data_converter
    converter = codec_data_converter(EncryptionCodec([K1]))
    assert converter.failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    [sealed] = await converter.encode([NOTE])
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert await converter.decode([sealed], [AgentNotification]) == [NOTE]


def test_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "codec.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    [key] = parse_codec_keys(first)
    assert len(key.key) == 32

    path.write_text("not a key list\n")
    with pytest.raises(CodecConfigError) as caught:
        load_or_create_key_file(path)
    assert str(caught.value).startswith(f"{path} entry 1 is not keyid:base64key")


def test_dev_encrypts_by_default_with_a_kept_key(tmp_path: Path) -> None:
    ports = DevPorts(temporal=7301, ui=7302, api=7303)
    settings = make_settings(
        tmp_path, TEMPORAL_API_KEY="cloud-key", TEMPORAL_TLS_SERVER_NAME="cloud.example", TEMPORAL_TLS=True
    )
    update = dev_codec_settings(settings, tmp_path, ports)
    keys = update["codec_keys"]
    assert isinstance(keys, SecretStr)
    assert keys.get_secret_value() == (tmp_path / CODEC_KEY_FILE).read_text().strip()
    assert dev_codec_settings(settings, tmp_path, ports)["codec_keys"] == keys, "the same key on every run"
    # The dev server speaks plain gRPC on 127.0.0.1, whatever production settings the shell has.
    assert (update["temporal_api_key"], update["temporal_tls"], update["temporal_tls_server_name"]) == (
        None,
        False,
        None,
    )
    origins = settings.changed(**update).ui_origins
    assert origins == [
        "http://127.0.0.1:8233",
        "http://localhost:8233",
        "http://127.0.0.1:7302",
        "http://localhost:7302",
    ]


def test_dev_uses_configured_keys_and_stops_on_broken_ones(tmp_path: Path) -> None:
    ports = DevPorts()
    update = dev_codec_settings(make_settings(tmp_path, codec_keys=K1.entry()), tmp_path, ports)
    assert update["codec_keys"] == SecretStr(K1.entry())
    assert not (tmp_path / CODEC_KEY_FILE).exists()
    with pytest.raises(RuntimeError, match="HERALD_CODEC_KEYS entry 1"):
        dev_codec_settings(make_settings(tmp_path, codec_keys="k1:AAAA"), tmp_path, ports)


def test_dev_ui_decodes_through_the_api_codec_endpoint(tmp_path: Path) -> None:
    command = temporal_command(tmp_path, DevPorts(temporal=7301, ui=7302, api=7303))
    assert command[command.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:7303/codec"


async def test_codec_generate_prints_a_fresh_usable_entry() -> None:
    code, out, err = await run_cli(clean_env(), "codec", "generate")
    assert code == 0, err
    [entry] = out.splitlines()
    [key] = parse_codec_keys(entry)
    assert key.key_id.startswith("k") and len(key.key) == 32
    assert "HERALD_CODEC_KEYS" in err and entry not in err

    code, named, _ = await run_cli(clean_env(), "codec", "generate", "--key-id", "k-2025-03")
    assert code == 0 and named.startswith("k-2025-03:") and named.split(":")[1] != entry.split(":")[1]
    code, _, err = await run_cli(clean_env(), "codec", "generate", "--key-id", "no spaces")
    assert code == 2 and "--key-id" in err


def test_new_keys_are_random_and_named_by_when_they_were_made() -> None:
    dated, named = new_codec_key(), new_codec_key("k2")
    assert re.fullmatch(r"k\d{8}T\d{6}", dated.key_id) and named.key_id == "k2"
    assert dated.key != named.key and len(dated.key) == 32
    assert parse_codec_keys(dated.entry()) == [dated]
    with pytest.raises(CodecConfigError, match="key id must be"):
        new_codec_key("has space")


def test_every_process_finds_the_key_where_dev_keeps_it(tmp_path: Path) -> None:
    """HERALD_CODEC_KEYS, else HERALD_HOME/codec.key, else none. Only `herald dev` used to read the file."""
    assert find_codec_keys(make_settings(tmp_path)).keys is None
    assert isinstance(codec_for(make_settings(tmp_path)), NoKeyCodec)
    assert not (tmp_path / CODEC_KEY_FILE).exists(), "only herald dev makes the file"

    dev_codec_settings(make_settings(tmp_path), tmp_path, DevPorts())  # `herald dev` makes and keeps it
    [kept] = parse_codec_keys((tmp_path / CODEC_KEY_FILE).read_text())
    found = find_codec_keys(make_settings(tmp_path))
    assert found.source == str(tmp_path.resolve() / CODEC_KEY_FILE)
    codec = codec_for(make_settings(tmp_path))
    assert isinstance(codec, EncryptionCodec) and codec.key_ids == [kept.key_id]
    # Messages name the file the key came from.
    with pytest.raises(UnknownCodecKey, match=f"which {re.escape(found.source)} doesn't hold"):
        codec.decrypt(EncryptionCodec([K2]).encrypt(payload_of("x")))

    configured = codec_for(make_settings(tmp_path, codec_keys=K1.entry()))
    assert isinstance(configured, EncryptionCodec) and configured.key_ids == ["k1"], "the variable wins"

    (tmp_path / CODEC_KEY_FILE).write_text("k1:short\n")
    with pytest.raises(CodecConfigError) as caught:
        codec_for(make_settings(tmp_path))
    assert str(caught.value).startswith(f"{tmp_path.resolve() / CODEC_KEY_FILE} entry 1 (key k1)")


async def test_without_a_key_an_encrypted_payload_names_what_to_set(tmp_path: Path) -> None:
    """It used to be the SDK's `KeyError: 'Unknown payload encoding binary/encrypted'`."""
    key_file = tmp_path / CODEC_KEY_FILE
    codec = NoKeyCodec(key_file)
    plain = payload_of(NOTE)
    assert await codec.encode([plain]) == [plain] and await codec.decode([plain]) == [plain]
    sealed = EncryptionCodec([K1]).encrypt(plain)
    with pytest.raises(MissingCodecKey) as caught:
        await codec.decode([plain, sealed])
    assert str(caught.value) == (
        f"payload encrypted with key k1, but this process has no codec key: neither HERALD_CODEC_KEYS is set "
        f"nor {key_file} exists. Set HERALD_CODEC_KEYS to the workers' value, or HERALD_HOME to the directory "
        "whose codec.key `herald dev` made"
    )
    converter = codec_data_converter(codec)
    assert converter.failure_converter_class is pydantic_data_converter.failure_converter_class, "failures unchanged"
    with pytest.raises(MissingCodecKey):
        await converter.decode([sealed], [AgentNotification])
