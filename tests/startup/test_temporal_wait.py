"""bookme/temporal_connect.py's wait at startup: which failures are waited for, and how long.

Real sockets on loopback (a port where nothing listens, a server that hangs up at once); no
Temporal server is needed to tell them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from bookme.embedded.process import free_port
from bookme.settings import Settings, SettingsError
from bookme.temporal_connect import (
    ConnectBackoff,
    TemporalNotAnswering,
    TemporalUnreachable,
    not_answering,
    wait_for_temporal,
)
from tests.conftest import TemporalService

API_KEY = "bm-temporal-api-key-wait-0123456789"
QUICK = ConnectBackoff(first=0.05, cap=0.2)

# What the SDK's bridge said in each case (temporalio 1.35; an untrusted certificate is in
# test_temporal_connect.py).
REFUSED = (
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
    'ConnectError(ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, kind: '
    'ConnectionRefused, message: "Connection refused" })))'
)
UNRESOLVED = (
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
    'ConnectError(ConnectError("dns error", Custom { kind: Uncategorized, error: "failed to '
    'lookup address information: Name or service not known" })))'
)
HUNG = (
    "Failed client connect: `get_system_info` call error after connection: Status { code: "
    'Cancelled, message: "Timeout expired", source: Some(tonic::transport::Error(Transport, '
    "TimeoutExpired(()))) }"
)
HUNG_UP = (
    "Failed client connect: `get_system_info` call error after connection: Status { code: "
    'Unknown, message: "transport error", source: Some(tonic::transport::Error(Transport, '
    "hyper::Error(Io, Kind(ConnectionReset)))) }"
)
TLS_TO_PLAINTEXT = (
    "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
    'ConnectError(Custom { kind: UnexpectedEof, error: "tls handshake eof" }))'
)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def hangs_up() -> AsyncIterator[str]:
    """A server that answers the TCP handshake and closes at once (as a TLS one does to
    plaintext): someone answered, waiting will not change what."""

    async def close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize("error", [REFUSED, UNRESOLVED, HUNG])
def test_no_server_answering_is_waited_for(error: str):
    assert not_answering(error)


@pytest.mark.parametrize("error", [HUNG_UP, TLS_TO_PLAINTEXT])
def test_a_server_refusing_us_is_not_waited_for(error: str):
    assert not not_answering(error)


def test_backoff_doubles_from_half_a_second_to_ten():
    assert [ConnectBackoff().delay(n) for n in range(1, 9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
        10.0,
    ]
    assert ConnectBackoff().delay(10_000) == 10.0


async def test_waits_for_a_closed_port_until_stopped_logging_each_attempt_without_the_key():
    stop = asyncio.Event()
    registry = CollectorRegistry()
    address = f"127.0.0.1:{free_port()}"
    with capture_logs() as logs:
        waiting = asyncio.create_task(
            wait_for_temporal(
                settings(temporal_address=address, temporal_api_key=API_KEY),
                stop,
                registry=registry,
                backoff=QUICK,
            )
        )
        for _ in range(1000):  # three attempts take 0.15 s of backoff plus the connects
            if sum(e["event"] == "temporal_unreachable" for e in logs) >= 3:
                break
            await asyncio.sleep(0.01)
        assert not waiting.done()
        assert registry.get_sample_value("bookme_temporal_waiting") == 1
        stop.set()
        assert await asyncio.wait_for(waiting, 5) is None

    attempts = [e for e in logs if e["event"] == "temporal_unreachable"]
    assert [e["attempt"] for e in attempts[:3]] == [1, 2, 3]
    assert [e["retry_in_seconds"] for e in attempts[:3]] == [0.05, 0.1, 0.2]
    assert attempts[0]["temporal"] == f"{address} (namespace default, TLS, API key)"
    assert "tcp connect error" in attempts[0]["error"]
    assert API_KEY not in repr(logs)


async def test_gives_up_after_the_configured_wait():
    with pytest.raises(TemporalNotAnswering, match=r"cannot connect to Temporal at 127\.0\.0\.1:"):
        await asyncio.wait_for(
            wait_for_temporal(
                settings(
                    temporal_address=f"127.0.0.1:{free_port()}", temporal_connect_wait_seconds=0.5
                ),
                asyncio.Event(),
                backoff=QUICK,
            ),
            10,
        )


async def test_a_server_hanging_up_fails_at_once():
    with capture_logs() as logs:
        async with hangs_up() as address:
            with pytest.raises(TemporalUnreachable) as failure:
                await asyncio.wait_for(
                    wait_for_temporal(settings(temporal_address=address), asyncio.Event()), 10
                )
    assert not isinstance(failure.value, TemporalNotAnswering)
    assert "does the server expect TLS?" in str(failure.value)
    assert not [e for e in logs if e["event"] == "temporal_unreachable"]


async def test_an_unreadable_tls_file_fails_at_once(tmp_path: Path):
    with pytest.raises(SettingsError, match="cannot read the Temporal CA file"):
        await asyncio.wait_for(
            wait_for_temporal(
                settings(temporal_tls_ca_file=tmp_path / "absent.pem"), asyncio.Event()
            ),
            10,
        )


@pytest.mark.integration
async def test_a_namespace_the_server_does_not_know_fails_at_once(temporal: TemporalService):
    with pytest.raises(SettingsError) as failure:
        await asyncio.wait_for(
            wait_for_temporal(
                settings(temporal_address=temporal.address, temporal_namespace="no-such-ns"),
                asyncio.Event(),
            ),
            30,
        )
    assert str(failure.value) == (
        f"Temporal at {temporal.address} (namespace no-such-ns, plaintext) has no namespace"
        " 'no-such-ns' (set BOOKME_TEMPORAL_NAMESPACE)"
    )
