"""connect_temporal's production settings: mTLS files, a CA, a server name, an API key (Temporal Cloud), the
namespace, and the codec; clear errors naming the variable. Nothing here connects anywhere but 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from herald.codec import CodecKey, EncryptionCodec
from herald.config import Settings
from starter.client import TemporalSettingsError, connect_temporal, temporal_api_key, temporal_tls
from tests.conftest import make_settings

VARIABLES = [
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_CA",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_API_KEY",
    "TEMPORAL_NAMESPACE",
    "HERALD_CODEC_KEYS",
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
    assert settings.temporal_namespace == "herald.a1b2c"
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
        await connect_temporal(settings.model_copy(update={"temporal_tls": None, "temporal_tls_ca": tmp_path / "x"}))
