"""Backfill of thousands of events in adaptive eth_getLogs ranges (real anvil + Postgres)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bench.chaos.rpc_proxy import FaultProxy
from chain.client import ChainClient
from tests.listener.conftest import MakeListener, cursor_row
from tests.listener.driver import EscrowDriver, EventEmitter
from tests.listener.fakes import RecordingSink

pytestmark = pytest.mark.integration

SPREAD = 2500
DENSE = 2500
PER_DENSE_BLOCK = 125


async def test_backfill_of_5000_events_in_adaptive_ranges(
    driver: EscrowDriver, engine, make_listener: MakeListener, proxy: FaultProxy
):
    emitter = EventEmitter(driver)
    await emitter.install()
    start = await driver.head() + 1
    ids = await emitter.emit(SPREAD)
    ids += await emitter.emit(DENSE, per_block=PER_DENSE_BLOCK)
    head = await driver.head()
    # Parallel senders now and then share a block; the spread part is still ~1 per block.
    assert head - start + 1 > 0.8 * SPREAD + DENSE // PER_DENSE_BLOCK

    # A provider that refuses wide ranges (suggesting one) and answers over 300 logs.
    proxy.faults.max_log_blocks = 1000
    proxy.faults.max_log_results = 300
    sink = RecordingSink()
    async with ChainClient([proxy.http_url]) as client:
        listener = make_listener(
            sink,
            client=client,
            contract=emitter.address,
            start_block=start,
            initial_block_range=100,
            max_block_range=5000,
        )
        await listener.sync_once()

    assert len(sink.calls) == SPREAD + DENSE
    assert Counter(c.event.chain_booking_id for c in sink.calls) == Counter(ids)
    assert set(sink.applications.values()) == {1}
    async with engine.connect() as conn:
        from sqlalchemy import text

        stored = await conn.scalar(
            text("SELECT count(DISTINCT (tx_hash, log_index)) FROM blockchain_events")
        )
    assert stored == SPREAD + DENSE
    cursor = await cursor_row(engine)
    assert cursor.last_block_number == head
    assert cursor.last_block_hash == await driver.block_hash(head)
    refusals = {
        s.labels["reason"]: s.value
        for metric in listener.metrics.range_refusals.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }
    # Grew past the block limit, was told the range, then shrank for the dense blocks.
    assert refusals.get("too_large", 0) >= 2
    assert proxy.faults.calls["eth_getLogs"] > (head - start) // 1000
    assert listener.fetcher.range.size <= 1000


async def test_events_emitted_during_backfill_are_all_delivered_once(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    emitter = EventEmitter(driver)
    await emitter.install()
    start = await driver.head() + 1
    ids = await emitter.emit(300)
    sink = RecordingSink()
    listener = make_listener(
        sink,
        contract=emitter.address,
        start_block=start,
        initial_block_range=10,
        max_block_range=10,
    )
    running = asyncio.create_task(listener.run())
    try:
        # New payments land while the listener is still working through the old ones.
        ids += await emitter.emit(200)
        head = await driver.head()
        async with asyncio.timeout(60):
            while True:
                if listener.cursor is not None and listener.cursor.number >= head:
                    break
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert Counter(c.event.chain_booking_id for c in sink.calls) == Counter(ids)
    assert (await cursor_row(engine)).last_block_number >= head
