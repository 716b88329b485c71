"""Temporal lost after the API connected, behind a proxy or balancer that still accepts the TCP
connection: every call fails with the core SDK's "transport error" (status UNKNOWN, not
UNAVAILABLE). That is an outage, a 503 with Retry-After, not a 500.

Found by the chaos run's two-minute Temporal outage (bench/chaos): each API replica reaches
Temporal through a TCP proxy, and every POST during the outage was a 500.
"""

from __future__ import annotations

import pytest
from temporalio.client import Client

from bench.chaos.tcp_proxy import TcpFaultProxy
from bookme.embedded.process import free_port
from tests.api.conftest import ApiFactory
from tests.api.helpers import SERVICE_AUTH, booking_body, serve
from tests.conftest import TemporalService

pytestmark = pytest.mark.integration


async def test_temporal_gone_behind_a_proxy_is_a_503_with_retry_after(
    factory: ApiFactory, temporal: TemporalService
) -> None:
    host, _, port = temporal.address.rpartition(":")
    path = TcpFaultProxy("api->temporal", host, int(port))
    await path.start()
    try:
        client = await Client.connect(path.address, namespace=temporal.namespace)
        # The server behind the proxy dies: open connections close, new ones reach nothing.
        path.target_port = free_port()
        await path.drop_connections()
        async with serve(factory.app(temporal_client=client)) as http:
            created = await http.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
            assert created.status_code == 503, created.text
            assert created.json()["code"] == "temporal_unavailable"
            assert int(created.headers["Retry-After"]) >= 1
    finally:
        await path.stop()
