"""Encrypted Temporal payloads: AES-256-GCM, the key id in each payload's metadata, keys from HERALD_CODEC_KEYS.

Workflow inputs, results and activity arguments carry personal data (titles, bodies, addresses), and Temporal
keeps them in every history. With keys configured, Temporal only ever stores ciphertext; the worker, the starter
and the API decrypt with the same keys, and the codec endpoint (herald/api/codec.py) lets the UI and the CLI read
histories. Rotation is adding a key in front: the first key encrypts, every listed key decrypts, so keep old keys
for as long as histories written with them matter.

Messages here never carry key material: they name HERALD_CODEC_KEYS, the entry's position and its key id.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

if TYPE_CHECKING:
    from herald.config import Settings

ENV_NAME = "HERALD_CODEC_KEYS"
# `herald dev` keeps its key here, under HERALD_HOME; every other process finds it there (find_codec_keys).
KEY_FILE = "codec.key"
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

log = logging.getLogger("herald.codec")


class CodecConfigError(ValueError):
    """HERALD_CODEC_KEYS (or the dev key file) is malformed. The message names the entry, never its key."""


class CodecError(ValueError):
    """A payload could not be decrypted: its key isn't configured, or its ciphertext fails authentication."""


class UnknownCodecKey(CodecError):
    def __init__(self, key_id: str, source: str = ENV_NAME) -> None:
        super().__init__(
            f"payload encrypted with key {key_id}, which {source} doesn't hold; add it back to read old histories"
        )
        self.key_id = key_id


class MissingCodecKey(CodecError):
    """An encrypted payload reached a process that loaded no key (instead of the SDK's KeyError on its encoding)."""

    def __init__(self, key_id: str, key_file: Path) -> None:
        super().__init__(
            f"payload encrypted with key {key_id}, but this process has no codec key: neither {ENV_NAME} is set "
            f"nor {key_file} exists. Set {ENV_NAME} to the workers' value, or HERALD_HOME to the directory "
            f"whose {KEY_FILE} `herald dev` made"
        )
        self.key_id = key_id


class CodecMismatch(CodecError):
    """Found at startup: what the workers encrypted, this process can't decrypt. The message says what to set."""

    def __init__(self, problem: CodecError, schedule_id: str) -> None:
        super().__init__(
            f"{problem}. Found at startup in the {schedule_id} schedule, which a Herald worker wrote: give this "
            f"process the workers' keys ({ENV_NAME}, or HERALD_HOME set to the `herald dev` directory whose "
            f"{KEY_FILE} they use). If that key is gone for good, delete the schedule "
            f"(`temporal schedule delete --schedule-id {schedule_id}`); the next worker makes it again"
        )
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class CodecKey:
    """One AES-256 key and the id written beside every payload it encrypts (the key itself never prints)."""

    key_id: str
    key: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not KEY_ID_RE.fullmatch(self.key_id):
            raise CodecConfigError("a codec key id must be 1-64 letters, digits, '.', '_' or '-'")
        if len(self.key) != KEY_BYTES:
            raise CodecConfigError(f"codec key {self.key_id} must be {KEY_BYTES} bytes")

    def entry(self) -> str:
        """`keyid:base64key`, one HERALD_CODEC_KEYS entry."""
        return f"{self.key_id}:{base64.b64encode(self.key).decode()}"


def _decode_key(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    text = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def parse_codec_keys(text: str, source: str = ENV_NAME) -> list[CodecKey]:
    """`k2:<base64>,k1:<base64>` -> keys, the encrypting one first. Errors name `source` and the entry's position."""
    entries = [part.strip() for part in text.split(",")]
    if not any(entries):
        raise CodecConfigError(f"{source} is set but holds no key; expected keyid:base64key[,keyid:base64key...]")
    keys: list[CodecKey] = []
    for position, entry in enumerate(entries, start=1):
        where = f"{source} entry {position}"
        if not entry:
            raise CodecConfigError(f"{where} is empty; entries are separated by single commas")
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep:
            raise CodecConfigError(f"{where} is not keyid:base64key")
        if not KEY_ID_RE.fullmatch(key_id):
            # Not echoed: a key pasted in the wrong place would land here.
            raise CodecConfigError(f"{where}: the key id must be 1-64 letters, digits, '.', '_' or '-'")
        try:
            key = _decode_key(encoded)
        except (binascii.Error, ValueError):
            raise CodecConfigError(f"{where} (key {key_id}): the key is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise CodecConfigError(
                f"{where} (key {key_id}): the key is {len(key)} bytes; it must be {KEY_BYTES} (`herald codec generate`)"
            )
        if any(existing.key_id == key_id for existing in keys):
            raise CodecConfigError(f"{where}: key id {key_id} appears more than once")
        keys.append(CodecKey(key_id, key))
    return keys


def new_codec_key(key_id: str | None = None) -> CodecKey:
    """A fresh random key; the default id says when it was made (`k20250301T120000`), which helps rotation."""
    return CodecKey(key_id or datetime.now(UTC).strftime("k%Y%m%dT%H%M%S"), secrets.token_bytes(KEY_BYTES))


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole serialized payload. Unencrypted payloads decode as they are, so histories
    written before encryption was turned on stay readable."""

    def __init__(self, keys: Sequence[CodecKey], source: str = ENV_NAME) -> None:
        if not keys:
            raise CodecConfigError(f"{source} holds no key")
        self._encrypting = keys[0]
        self._ciphers = {key.key_id: AESGCM(key.key) for key in keys}
        self._source = source

    @property
    def key_id(self) -> str:
        """The id new payloads are encrypted with."""
        return self._encrypting.key_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._encrypting.key_id
        nonce = os.urandom(NONCE_BYTES)
        # The key id is authenticated too, so relabelling a payload fails like tampering does.
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if not raw_id:
            raise CodecError(f"an encrypted payload carries no {KEY_ID_METADATA}; it wasn't written by Herald")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownCodecKey(key_id, self._source)
        data = payload.data
        try:
            if len(data) <= NONCE_BYTES:
                raise InvalidTag
            return Payload.FromString(cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], raw_id))
        except InvalidTag:
            raise CodecError(
                f"payload encrypted with key {key_id} failed authentication: it was altered, or the key under "
                f"that id in {self._source} is not the one it was written with"
            ) from None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]


class NoKeyCodec(PayloadCodec):
    """What a process without keys decodes with: plain payloads pass, an encrypted one raises MissingCodecKey
    naming the settings to fix. Encoding is left alone: without a key, payloads go out as they are."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for payload in payloads:
            if payload.metadata.get("encoding") == ENCODING:
                key_id = payload.metadata.get(KEY_ID_METADATA, b"?").decode(errors="replace")
                raise MissingCodecKey(key_id, self.key_file)
        return list(payloads)


def codec_data_converter(codec: PayloadCodec | None) -> DataConverter:
    """Herald's converter (pydantic), encrypted when there is a codec.

    With a codec, failure messages and stack traces go into an encoded attribute too: they stay out of
    the history's clear text, and the codec endpoint shows them in the UI. A NoKeyCodec only guards decoding:
    failures stay as the SDK writes them.
    """
    if codec is None:
        return pydantic_data_converter
    if isinstance(codec, NoKeyCodec):
        return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


_warned_unencrypted = False


def codec_from_keys(configured: SecretStr | None, source: str = ENV_NAME) -> EncryptionCodec | None:
    """The codec for HERALD_CODEC_KEYS (validated now), or None with a warning, once per process, when unset.
    `source` is where the keys came from (the variable, or `herald dev`'s key file), for messages."""
    global _warned_unencrypted
    if configured is None:
        if not _warned_unencrypted:
            _warned_unencrypted = True
            log.warning(
                "%s is unset: workflow inputs and results reach Temporal unencrypted; "
                "`herald codec generate` makes a key",
                ENV_NAME,
            )
        return None
    return EncryptionCodec(parse_codec_keys(configured.get_secret_value(), source), source)


@dataclasses.dataclass(frozen=True)
class CodecKeys:
    """The keys a process found, and where: HERALD_CODEC_KEYS, or the key file's path (what messages name)."""

    keys: SecretStr | None
    source: str
    key_file: Path


def find_codec_keys(settings: Settings, *, create: bool = False) -> CodecKeys:
    """The one place every process (worker, API, client, MCP, CLI, `herald dev`) finds its codec keys:
    HERALD_CODEC_KEYS when set, else HERALD_HOME/codec.key when it exists (`herald dev` keeps its key there;
    `create=True`, as `herald dev` does, makes it first), else none. A malformed file raises CodecConfigError
    naming its path."""
    key_file = settings.store.home.resolve() / KEY_FILE
    if settings.temporal.codec_keys is not None:
        return CodecKeys(settings.temporal.codec_keys, ENV_NAME, key_file)
    if create:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        return CodecKeys(SecretStr(load_or_create_key_file(key_file)), str(key_file), key_file)
    try:
        text = key_file.read_text().strip()
    except FileNotFoundError:
        return CodecKeys(None, ENV_NAME, key_file)
    except OSError as exc:
        raise CodecConfigError(f"{key_file}: can't be read ({exc.strerror}); fix it or set {ENV_NAME}") from None
    parse_codec_keys(text, source=str(key_file))
    return CodecKeys(SecretStr(text), str(key_file), key_file)


def codec_for(settings: Settings, *, create: bool = False) -> EncryptionCodec | NoKeyCodec:
    """The payload codec for these settings (find_codec_keys): encrypting with the keys found, or, with none,
    one that names the missing key when it meets an encrypted payload (and a warning, once per process)."""
    found = find_codec_keys(settings, create=create)
    codec = codec_from_keys(found.keys, found.source)
    return codec if codec is not None else NoKeyCodec(found.key_file)


def load_or_create_key_file(path: Path) -> str:
    """The HERALD_CODEC_KEYS value kept in `path` (`herald dev`'s HERALD_HOME/codec.key), made once, mode 0600.

    The file holds entries in HERALD_CODEC_KEYS's format, so a key can be rotated there by hand as well.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text().strip()
        parse_codec_keys(text, source=str(path))
        return text
    entry = new_codec_key().entry()
    with os.fdopen(fd, "w") as file:
        file.write(entry + "\n")
    return entry
