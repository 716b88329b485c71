"""Provider trouble behind a fault-injecting proxy: dropped WebSockets, 429s, stalls, silence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bench.chaos.rpc_proxy import FaultProxy
from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from tests.listener.conftest import MakeListener
from tests.listener.driver import EscrowDriver
from tests.listener.fakes import RecordingSink

pytestmark = pytest.mark.integration


@pytest.fixture
async def backup(fresh_chain: AnvilNode) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(fresh_chain.http_url, fresh_chain.ws_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def _delivered(sink: RecordingSink, tx_hash: str, limit: float = 30.0) -> None:
    async with asyncio.timeout(limit):
        while True:
            if any(e.identity.tx_hash == tx_hash for e in sink.applied.values()):
                return
            sink.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sink.arrived.wait(), 0.2)


def _subscriptions(listener, outcome: str) -> float:
    for metric in listener.metrics.subscriptions.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels["outcome"] == outcome:
                return float(sample.value)
    return 0.0


async def test_delivery_survives_provider_faults_and_returns_to_the_first(
    driver: EscrowDriver, make_listener: MakeListener, proxy: FaultProxy, backup: FaultProxy
):
    sink = RecordingSink()
    async with ChainClient(
        [proxy.ws_url, backup.http_url], timeout=1.0, cooldown_seconds=0.5, backoff_max=0.5
    ) as client:
        listener = make_listener(sink, client=client, poll_interval=0.2, head_stale_after=1.0)
        running = asyncio.create_task(listener.run())
        payments = []
        try:
            payments.append(await driver.pay())
            await _delivered(sink, payments[-1].tx_hash)
            assert client.current_provider_index == 0
            assert _subscriptions(listener, "opened") >= 1

            # The WebSocket provider drops every socket and answers 429: the backup serves.
            proxy.faults.rate_limited = True
            await proxy.drop_websockets()
            payments.append(await driver.pay())
            await _delivered(sink, payments[-1].tx_hash)
            assert client.current_provider_index == 1

            # Healthy again: the listener goes back to it and re-subscribes.
            proxy.faults.rate_limited = False
            opened = _subscriptions(listener, "opened")
            payments.append(await driver.pay())
            await _delivered(sink, payments[-1].tx_hash)
            async with asyncio.timeout(30):
                while (
                    client.current_provider_index != 0
                    or _subscriptions(listener, "opened") <= opened
                ):
                    await asyncio.sleep(0.1)
                    await driver.mine(1)

            # A stalled provider (no answers at all) times out and fails over too.
            proxy.faults.stalled = True
            payments.append(await driver.pay())
            await _delivered(sink, payments[-1].tx_hash)
            proxy.faults.stalled = False

            # A subscription that goes silent costs latency, never events; it is re-opened.
            proxy.faults.silent_subscriptions = True
            stale = _subscriptions(listener, "stale")
            payments.append(await driver.pay())
            await _delivered(sink, payments[-1].tx_hash)
            async with asyncio.timeout(30):
                while _subscriptions(listener, "stale") <= stale:
                    await asyncio.sleep(0.2)
                    await driver.mine(1)
            proxy.faults.silent_subscriptions = False
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    assert {e.identity.tx_hash for e in sink.applied.values()} == {p.tx_hash for p in payments}
    assert set(sink.applications.values()) == {1}
