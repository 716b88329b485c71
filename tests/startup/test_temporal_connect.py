"""bookme/temporal_connect.py: one code path from settings to a Temporal client, over TLS (a
TLS-terminating proxy in front of the dev server), mTLS and with an API key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig

from bookme.settings import Settings, SettingsError
from bookme.temporal_connect import (
    TemporalNotAnswering,
    TemporalUnreachable,
    connect_temporal,
    temporal_connection,
)
from tests.conftest import TemporalService
from tests.startup.tls_proxy import ThrowawayCa, tls_proxy

SERVER_NAME = "temporal.bookme.test"
API_KEY = "bm-temporal-api-key-0123456789"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_plaintext_to_make_dev_by_default():
    connection = temporal_connection(settings())
    assert (connection.address, connection.namespace, connection.tls) == (
        "127.0.0.1:7233",
        "default",
        False,
    )


def test_tls_settings_build_the_sdk_tls_config(tmp_path: Path):
    ca = ThrowawayCa(tmp_path)
    client = ca.issue("worker", client=True)
    connection = temporal_connection(
        settings(
            temporal_address="temporal.internal:7233",
            temporal_namespace="bookme",
            temporal_tls_ca_file=ca.pem.cert,
            temporal_tls_cert_file=client.cert,
            temporal_tls_key_file=client.key,
            temporal_tls_server_name=SERVER_NAME,
        )
    )
    assert connection.tls == TLSConfig(
        server_root_ca_cert=ca.pem.cert.read_bytes(),
        domain=SERVER_NAME,
        client_cert=client.cert.read_bytes(),
        client_private_key=client.key.read_bytes(),
    )
    assert connection.describe() == "temporal.internal:7233 (namespace bookme, mTLS)"


def test_an_api_key_implies_tls_and_is_never_shown():
    connection = temporal_connection(
        settings(temporal_address="ns.acct.tmprl.cloud:7233", temporal_api_key=API_KEY)
    )
    assert connection.tls == TLSConfig()
    assert API_KEY not in connection.describe()
    assert API_KEY not in repr(connection)


def test_half_an_mtls_pair_or_an_unreadable_file_is_refused(tmp_path: Path):
    with pytest.raises(
        SettingsError, match="CERT_FILE and BOOKME_TEMPORAL_TLS_KEY_FILE go together"
    ):
        temporal_connection(settings(temporal_tls_cert_file=ThrowawayCa(tmp_path).pem.cert))
    with pytest.raises(SettingsError, match=r"cannot read the Temporal CA file .*: No such file"):
        temporal_connection(settings(temporal_tls_ca_file=tmp_path / "missing.pem"))


def test_a_profile_is_read_only_when_named_and_bookme_settings_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ca = ThrowawayCa(tmp_path)
    profile = tmp_path / "temporal.toml"
    profile.write_text(
        "[profile.cloud]\n"
        'address = "acct.tmprl.cloud:7233"\n'
        'namespace = "from-profile"\n'
        f'api_key = "{API_KEY}"\n'
        "[profile.cloud.tls]\n"
        f'server_ca_cert_path = "{ca.pem.cert}"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profile))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "from-env:7233")
    assert temporal_connection(settings()).address == "127.0.0.1:7233"  # no profile: not read

    loaded = temporal_connection(settings(temporal_profile="cloud"))
    assert (loaded.address, loaded.namespace) == ("from-env:7233", "from-profile")
    assert loaded.api_key == SecretStr(API_KEY)
    assert isinstance(loaded.tls, TLSConfig)
    assert loaded.tls.server_root_ca_cert == ca.pem.cert.read_bytes()

    ours = temporal_connection(
        settings(
            temporal_profile="cloud",
            temporal_address="ours:7233",
            temporal_namespace="default",
            temporal_api_key="another-key",
        )
    )
    assert (ours.address, ours.namespace) == ("ours:7233", "default")
    assert ours.api_key == SecretStr("another-key")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match="cannot load Temporal profile 'cloud'"):
        temporal_connection(settings(temporal_profile="cloud"))


@pytest.mark.integration
async def test_tls_through_a_proxy_needs_the_ca_and_mtls_needs_the_client_certificate(
    temporal: TemporalService, tmp_path: Path
):
    ca = ThrowawayCa(tmp_path)
    server = ca.issue("frontend", dns=[SERVER_NAME])
    tls = {"temporal_tls_ca_file": ca.pem.cert, "temporal_tls_server_name": SERVER_NAME}

    async with tls_proxy(temporal.address, server) as address:
        client = await connect_temporal(settings(temporal_address=address, **tls))
        assert await client.service_client.check_health()
        # An API key travels in a header the dev server ignores; it never reaches an error.
        keyed = await connect_temporal(
            settings(temporal_address=address, temporal_api_key=API_KEY, **tls)
        )
        assert await keyed.service_client.check_health()

        started = time.monotonic()
        with pytest.raises(TemporalUnreachable) as untrusted:
            await connect_temporal(settings(temporal_address=address, temporal_tls=True))
        assert not isinstance(untrusted.value, TemporalNotAnswering)  # no use waiting for it
        message = str(untrusted.value)
        assert message.startswith(
            f"cannot connect to Temporal at {address} (namespace default, TLS)"
        )
        assert message.endswith(
            "(the server's certificate is not trusted: set BOOKME_TEMPORAL_TLS_CA_FILE)"
        )
        assert "\n" not in message
        assert time.monotonic() - started < 60

    client_ca = ThrowawayCa(tmp_path, name="client CA")
    worker = client_ca.issue("worker", client=True)
    async with tls_proxy(temporal.address, server, client_ca=client_ca.pem.cert) as address:
        with pytest.raises(TemporalUnreachable, match=r"require a client certificate\? set BOOKME"):
            await connect_temporal(settings(temporal_address=address, **tls))
        mtls = settings(
            temporal_address=address,
            temporal_tls_cert_file=worker.cert,
            temporal_tls_key_file=worker.key,
            **tls,
        )
        client = await connect_temporal(mtls)
        assert await client.service_client.check_health()
