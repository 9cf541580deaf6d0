"""connect_temporal's production settings: mTLS files, a CA, a server name, an API key (Temporal Cloud), the
namespace, and the codec; clear errors naming the variable. Nothing here connects anywhere but 127.0.0.1."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from herald.adapters.codec import CodecKey, CodecMismatch, EncryptionCodec
from herald.api.app import create_app
from herald.config import Settings
from starter.client import (
    HeraldClient,
    TemporalSettingsError,
    connect_temporal,
    temporal_api_key,
    temporal_profile,
    temporal_tls,
)
from tests.conftest import make_settings
from worker import ensure_retention_schedule, open_runtime

K1 = CodecKey("k1", bytes(range(32)))

VARIABLES = [
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_CA",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_API_KEY",
    "TEMPORAL_NAMESPACE",
    "HERALD_CODEC_KEYS",
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    for name, path in files.items():
        path.write_bytes(f"-----BEGIN {name.upper()}-----\n{name}\n".encode())
    return files


def test_the_dev_server_gets_plain_grpc(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert temporal_tls(settings) is False and temporal_api_key(settings) is None


def test_an_api_key_means_tls_with_system_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporal Cloud: TEMPORAL_ADDRESS=<ns>.<acct>.tmprl.cloud:7233, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY."""
    monkeypatch.setenv("TEMPORAL_API_KEY", "cloud-api-key")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "herald.a1b2c")
    settings = Settings()
    assert temporal_tls(settings) is True
    assert temporal_api_key(settings) == "cloud-api-key"
    assert settings.temporal.namespace == "herald.a1b2c"
    assert "cloud-api-key" not in repr(settings)
    monkeypatch.setenv("TEMPORAL_API_KEY", " ")
    assert temporal_api_key(Settings()) is None and temporal_tls(Settings()) is False


def test_mtls_reads_the_files_the_variables_name(monkeypatch: pytest.MonkeyPatch, pem_files: dict[str, Path]) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_CERT", str(pem_files["cert"]))
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(pem_files["key"]))
    monkeypatch.setenv("TEMPORAL_TLS_CA", str(pem_files["ca"]))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    assert temporal_tls(Settings()) == TLSConfig(
        server_root_ca_cert=pem_files["ca"].read_bytes(),
        domain="temporal.internal",
        client_cert=pem_files["cert"].read_bytes(),
        client_private_key=pem_files["key"].read_bytes(),
    )


def test_server_side_tls_with_a_private_ca_and_an_api_key(tmp_path: Path, pem_files: dict[str, Path]) -> None:
    settings = make_settings(tmp_path, TEMPORAL_TLS_CA=pem_files["ca"], TEMPORAL_API_KEY="k")
    assert temporal_tls(settings) == TLSConfig(server_root_ca_cert=pem_files["ca"].read_bytes())
    assert temporal_tls(make_settings(tmp_path, TEMPORAL_TLS=True)) is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"TEMPORAL_TLS_CERT": "cert"}, "TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: mTLS needs both files"),
        ({"TEMPORAL_TLS_KEY": "key"}, "TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not: mTLS needs both files"),
        ({"TEMPORAL_TLS_CERT": "missing", "TEMPORAL_TLS_KEY": "key"}, "TEMPORAL_TLS_CERT: no such file "),
        ({"TEMPORAL_TLS_CERT": "cert", "TEMPORAL_TLS_KEY": "missing"}, "TEMPORAL_TLS_KEY: no such file "),
        ({"TEMPORAL_TLS_CA": "missing"}, "TEMPORAL_TLS_CA: no such file "),
        ({"TEMPORAL_TLS_CA": "."}, "is a directory, not a PEM file"),
        ({"TEMPORAL_TLS": False, "TEMPORAL_TLS_CA": "ca"}, "TEMPORAL_TLS is false but TEMPORAL_TLS_CA is set"),
    ],
)
def test_unusable_settings_name_their_variable(
    tmp_path: Path, pem_files: dict[str, Path], values: dict[str, object], message: str
) -> None:
    resolved = {k: (pem_files.get(v, tmp_path / v) if isinstance(v, str) else v) for k, v in values.items()}
    with pytest.raises(TemporalSettingsError) as caught:
        temporal_tls(make_settings(tmp_path, **resolved))
    assert message in str(caught.value)


async def test_connect_temporal_passes_the_api_key_namespace_and_codec(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Against the local dev server: TEMPORAL_TLS=false keeps an API key on plain gRPC (as behind a local proxy)."""
    key = CodecKey("k1", bytes(range(32)))
    settings = make_settings(
        tmp_path,
        temporal_address=temporal_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE="default",
        TEMPORAL_API_KEY="local-api-key",
        TEMPORAL_TLS=False,
        codec_keys=key.entry(),
    )
    client = await connect_temporal(settings)
    assert client.api_key == "local-api-key"
    assert client.service_client.config.tls is False
    assert client.namespace == "default"
    codec = client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec) and codec.key_id == "k1"
    assert await client.service_client.check_health()

    with pytest.raises(TemporalSettingsError, match="TEMPORAL_TLS_CA: no such file"):
        await connect_temporal(settings.changed(temporal_tls=None, temporal_tls_ca=tmp_path / "x"))


async def test_connect_stops_when_its_key_cannot_read_the_workers_payloads(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A worker keeps one payload in Temporal, its retention schedule's input, encrypted with its key; connecting
    with keys that can't read it stops at once, saying what to set. Rotation re-encrypts it with the new key, so
    dropping the old one later still connects.

    It used to connect without a word, and the first outcome died with the SDK's
    `KeyError: 'Unknown payload encoding binary/encrypted'` (no key) or an error about the key (another key)."""
    schedule_id = f"retention-{uuid.uuid4().hex[:8]}"
    k2 = CodecKey("k2", bytes(range(100, 132)))
    worker_home = tmp_path / "worker"
    worker_home.mkdir()
    (worker_home / "codec.key").write_text(K1.entry() + "\n")  # as `herald dev` keeps it

    def settings(home: Path, **values: object) -> Settings:
        return make_settings(
            home,
            temporal_address=temporal_env.client.service_client.config.target_host,
            retention_schedule_id=schedule_id,
            **values,
        )

    worker_client = await connect_temporal(settings(worker_home))  # no schedule yet: nothing to compare
    await ensure_retention_schedule(worker_client, settings(worker_home))
    try:
        codec = (await connect_temporal(settings(worker_home))).data_converter.payload_codec
        assert isinstance(codec, EncryptionCodec) and codec.key_id == "k1", "the key found in HERALD_HOME/codec.key"

        with pytest.raises(CodecMismatch) as caught:
            await connect_temporal(settings(worker_home, codec_keys=k2.entry()))
        message = str(caught.value)
        assert message.startswith("payload encrypted with key k1, which HERALD_CODEC_KEYS doesn't hold")
        assert f"Found at startup in the {schedule_id} schedule" in message
        assert "give this process the workers' keys (HERALD_CODEC_KEYS, or HERALD_HOME" in message
        assert k2.entry().split(":")[1] not in message and K1.entry().split(":")[1] not in message

        empty = tmp_path / "elsewhere"
        with pytest.raises(CodecMismatch) as caught:
            await connect_temporal(settings(empty))
        assert str(caught.value).startswith(
            f"payload encrypted with key k1, but this process has no codec key: neither HERALD_CODEC_KEYS is set "
            f"nor {empty.resolve() / 'codec.key'} exists"
        )
        # The API connects on its first call: a 503 that names the problem, the details in the operator's log.
        async with open_runtime(settings(empty)) as runtime:
            app = create_app(settings(empty, codec_keys=k2.entry()), store=runtime.store, connect=HeraldClient.connect)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as api:
                refused = await api.post("/v1/notifications", json={"agent_id": "a", "user_id": "ada", "title": "t"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "codec_mismatch"
        assert "k1" not in refused.text and str(tmp_path) not in refused.text

        impostor = CodecKey("k1", bytes(32))  # the same id, another key
        with pytest.raises(CodecMismatch, match="payload encrypted with key k1 failed authentication"):
            await connect_temporal(settings(empty, codec_keys=impostor.entry()))

        # Rotation: the new key first, the old one kept; the worker's next start re-encrypts with the new one.
        rotated = settings(empty, codec_keys=f"{k2.entry()},{K1.entry()}")
        await ensure_retention_schedule(await connect_temporal(rotated), rotated)
        await connect_temporal(settings(empty, codec_keys=k2.entry()))  # k1 dropped: still reads the schedule
        with pytest.raises(CodecMismatch) as caught:
            await connect_temporal(settings(worker_home))  # the old key file alone no longer does
        key_file = worker_home.resolve() / "codec.key"
        assert str(caught.value).startswith(f"payload encrypted with key k2, which {key_file} doesn't hold")
    finally:
        await worker_client.get_schedule_handle(schedule_id).delete()


def test_a_profile_file_gives_the_address_and_namespace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE, as temporalio.envconfig reads them; a variable overrides."""
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.default]\naddress = "127.0.0.1:7001"\nnamespace = "from-default"\n'
        '[profile.prod]\naddress = "127.0.0.1:7002"\nnamespace = "from-prod"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    profile = temporal_profile(Settings())
    assert (profile.address, profile.namespace) == ("127.0.0.1:7001", "from-default")
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    profile = temporal_profile(Settings())
    assert (profile.address, profile.namespace) == ("127.0.0.1:7002", "from-prod")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:7003")
    assert temporal_profile(Settings()).address == "127.0.0.1:7003"

    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    with pytest.raises(TemporalSettingsError, match="TEMPORAL_PROFILE"):
        temporal_profile(Settings())
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(TemporalSettingsError, match="TEMPORAL_CONFIG_FILE: no such file"):
        temporal_profile(Settings())


async def test_connect_takes_the_profile_files_address_and_namespace(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    target = temporal_env.client.service_client.config.target_host
    config.write_text(f'[profile.local]\naddress = "{target}"\nnamespace = "default"\n')
    settings = make_settings(tmp_path, TEMPORAL_CONFIG_FILE=config, TEMPORAL_PROFILE="local")
    client = await connect_temporal(settings)
    assert client.service_client.config.target_host == target and client.namespace == "default"


@pytest.mark.parametrize(
    "variable", ["TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"]
)
def test_a_tls_file_that_is_not_there_names_temporals_variable(
    tmp_path: Path, pem_files: dict[str, Path], variable: str
) -> None:
    files = {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": pem_files["cert"],
        "TEMPORAL_TLS_CLIENT_KEY_PATH": pem_files["key"],
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pem_files["ca"],
    }
    files[variable] = tmp_path / "absent.pem"
    with pytest.raises(TemporalSettingsError, match=f"^{variable}: no such file "):
        temporal_tls(make_settings(tmp_path, **files))


def test_disabling_host_verification_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TemporalSettingsError, match=r"^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: "):
        temporal_tls(make_settings(tmp_path, TEMPORAL_TLS_DISABLE_HOST_VERIFICATION=True))
