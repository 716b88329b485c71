"""Reorgs by block hash on real anvil (anvil_reorg sends no `removed` logs), and lag that is not one."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from temporalio.client import Client
from temporalio.worker import Worker

from bench.chaos.rpc_proxy import FaultProxy
from bookme.settings import Settings, default_booking_policy
from chain.client import ChainClient
from listener.closed_events import REVERT_UNHEARD_REASON
from listener.sink import SignalOutcome
from listener.temporal_sink import TemporalSignalSink
from tests.listener.conftest import MakeListener, cursor_row, event_rows, insert_booking
from tests.listener.driver import EscrowDriver
from tests.listener.fakes import RecordingSink, SimulatedCrash
from worker import activity_dependencies
from workflows import OrphanPaymentWorkflow, orphan_workflow_id
from workflows.types import ChainEventSignal, OrphanResult

pytestmark = pytest.mark.integration


async def test_reorg_deeper_than_confirmations_retracts_the_event(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    booking = str(uuid.uuid4())
    paid = await driver.pay(booking)
    await insert_booking(engine, booking, paid.chain_booking_id)
    paid_block = int((await driver.receipt(paid.tx_hash))["blockNumber"], 16)
    await driver.mine(3)
    sink = RecordingSink()
    listener = make_listener(sink, confirmations=2)
    await listener.sync_once()
    assert [c.event.identity.tx_hash for c in sink.calls] == [paid.tx_hash]
    old_cursor = await cursor_row(engine)
    assert old_cursor.last_block_number == paid_block + 1

    # Replace the payment's block and everything after it; the payment vanishes.
    await driver.rpc("anvil_reorg", 4, [])
    await driver.mine(1)
    await listener.sync_once()

    assert [(c.method, c.booking_id, c.event.identity.tx_hash) for c in sink.calls] == [
        ("deliver", booking, paid.tx_hash),
        ("revert", booking, paid.tx_hash),
    ]
    assert sink.calls[1].event.payment == sink.calls[0].event.payment
    assert sink.applied == {}
    rows = await event_rows(engine)
    assert [(r.tx_hash, r.status) for r in rows] == [(paid.tx_hash, "REORGED")]
    cursor = await cursor_row(engine)
    head = await driver.head()
    assert cursor.last_block_number == head - 2
    assert cursor.last_block_hash == await driver.block_hash(head - 2)
    assert listener.metrics.reorgs._value.get() == 1

    # Nothing more happens on the next cycles.
    await listener.sync_once()
    assert len(sink.calls) == 2


async def _paid_and_delivered(
    driver: EscrowDriver, engine: Any, make_listener: MakeListener, sink: RecordingSink
) -> tuple[str, Any, Any]:
    """A booking paid and confirmed (2 of 3 blocks), delivered once: booking, payment, listener."""
    booking = str(uuid.uuid4())
    paid = await driver.pay(booking)
    await insert_booking(engine, booking, paid.chain_booking_id)
    await driver.mine(3)
    listener = make_listener(sink, confirmations=2)
    await listener.sync_once()
    return booking, paid, listener


async def test_reorg_after_the_workflow_closed_says_so_on_the_event(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    sink = RecordingSink()
    booking, paid, listener = await _paid_and_delivered(driver, engine, make_listener, sink)
    sink.closed.add(booking)  # past its finality period: nobody will hear the revert
    sink.closed_orphans.add(paid.chain_booking_id)  # nor an orphan refund (there is none)

    await driver.rpc("anvil_reorg", 4, [])
    await driver.mine(1)
    await listener.sync_once()

    # The booking's workflow, then the orphan refund a late payment would have gone to.
    assert [(c.method, c.booking_id) for c in sink.calls] == [
        ("deliver", booking),
        ("revert", booking),
        ("revert", None),
    ]
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT status, status_reason FROM blockchain_events"))
        ).one()
    assert (row.status, row.status_reason) == ("REORGED", REVERT_UNHEARD_REASON)
    label = ("BookingCreatedAndPaid", "reverted_workflow_closed")
    assert listener.metrics.events.labels(*label)._value.get() == 1


async def test_reincluded_event_is_reverted_then_delivered_again_with_its_new_block(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    paid = await driver.pay()
    first_block = (await driver.receipt(paid.tx_hash))["blockHash"]
    await driver.mine(3)
    sink = RecordingSink()
    listener = make_listener(sink, confirmations=1)
    await listener.sync_once()
    raw = await driver.rpc("eth_getRawTransactionByHash", paid.tx_hash)

    await driver.rpc("anvil_reorg", 4, [[raw, 1]])
    await listener.sync_once()
    # Wherever the node put it, give the re-included payment its confirmation.
    await driver.mine(2)
    await listener.sync_once()

    receipt = await driver.receipt(paid.tx_hash)
    assert receipt["blockHash"] != first_block
    seen = [
        (c.method, c.event.identity.block_number, c.event.identity.block_hash) for c in sink.calls
    ]
    assert [(method, block_hash) for method, _, block_hash in seen] == [
        ("orphan", first_block),
        ("revert", first_block),
        ("orphan", receipt["blockHash"]),
    ], (seen, int(receipt["blockNumber"], 16), await driver.head(), listener.cursor)
    assert len(sink.applied) == 1
    rows = await event_rows(engine)
    assert [(r.tx_hash, r.status, r.block_hash) for r in rows] == [
        (paid.tx_hash, "RECEIVED", receipt["blockHash"])
    ]


async def test_reorg_within_confirmation_depth_delivers_nothing(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    sink = RecordingSink()
    listener = make_listener(sink, confirmations=3)
    paid = await driver.pay()
    await driver.mine(1)
    await listener.sync_once()
    assert sink.calls == []

    await driver.rpc("anvil_reorg", 2, [])
    await driver.mine(5)
    await listener.sync_once()
    await listener.sync_once()

    assert sink.calls == []
    assert await event_rows(engine) == []
    assert await driver.rpc("eth_getTransactionReceipt", paid.tx_hash) is None
    assert listener.metrics.reorgs._value.get() == 0
    assert (await cursor_row(engine)).last_block_number == await driver.head() - 3


async def test_lagging_provider_is_not_a_reorg(
    driver: EscrowDriver, engine, make_listener: MakeListener, proxy: FaultProxy
):
    payments = await driver.pay_many(3)
    sink = RecordingSink()
    await make_listener(sink).sync_once()
    head = await driver.head()
    assert (await cursor_row(engine)).last_block_number == head

    # A restart onto a provider 3 blocks behind, which also once lies about a block hash.
    proxy.faults.lag_head = head - 3
    async with ChainClient([proxy.http_url]) as lagging:
        behind = make_listener(sink, client=lagging)
        await behind.sync_once()
        await behind.sync_once()
        assert (await cursor_row(engine)).last_block_number == head

        await driver.pay()
        proxy.faults.lag_head = None
        proxy.faults.wrong_hash_reads[head] = 1
        await behind.sync_once()
        assert behind.metrics.suspected_reorgs._value.get() >= 1
        await behind.sync_once()

    assert behind.metrics.reorgs._value.get() == 0
    assert sink.reverted == []
    rows = await event_rows(engine)
    assert [r.status for r in rows] == ["RECEIVED"] * 4
    assert {r.tx_hash for r in rows} >= {p.tx_hash for p in payments}
    assert (await cursor_row(engine)).last_block_number == await driver.head()


async def test_event_signalled_before_a_crash_and_then_reorged_away_is_retracted(
    driver: EscrowDriver, engine, make_listener: MakeListener, monkeypatch
):
    paid = await driver.pay()
    sink = RecordingSink()
    crashing = make_listener(sink)
    advance = crashing.store.advance

    async def crash(cursor, blocks, **kwargs):
        if not blocks:  # the start anchor
            return await advance(cursor, blocks, **kwargs)
        raise SimulatedCrash("died before the checkpoint")

    monkeypatch.setattr(crashing.store, "advance", crash)
    with pytest.raises(SimulatedCrash):
        await crashing.sync_once()
    assert [c.method for c in sink.calls] == ["orphan"]

    # Above the (old) checkpoint the payment's block is replaced; the checkpoint itself stays.
    await driver.rpc("anvil_reorg", 1, [])
    await make_listener(sink).sync_once()

    assert [(c.method, c.event.identity.tx_hash) for c in sink.calls] == [
        ("orphan", paid.tx_hash),
        ("revert", paid.tx_hash),
    ]
    rows = await event_rows(engine)
    assert [(r.tx_hash, r.status) for r in rows] == [(paid.tx_hash, "REORGED")]
    assert (await cursor_row(engine)).last_block_number == await driver.head()


async def test_orphan_payment_reorged_away_is_never_refunded(
    driver: EscrowDriver,
    engine,
    make_listener: MakeListener,
    temporal_client: Client,
    database_url: str,
):
    escrow_before = await _usdc_balance(driver, driver.escrow)
    operator_nonce = await driver.rpc("eth_getTransactionCount", driver.operator.address, "latest")
    settings = Settings(
        database_url=database_url,
        rpc_urls=[driver.node.http_url],
        chain_id=driver.node.chain_id,
        escrow_address=driver.escrow,
        operator_private_key=SecretStr(driver.operator.private_key),
        confirmations=2,
        task_queue=f"orphan-reorg-{uuid.uuid4().hex[:10]}",
    )
    # Short waits so the workflow gives up on a re-inclusion within seconds.
    policy = default_booking_policy(
        confirmations=2,
        push_grace_seconds=1,
        poll_interval_seconds=1,
        monitoring_window_seconds=2,
        authorization_ttl_seconds=1,
    )
    sink = TemporalSignalSink(temporal_client, policy=policy, task_queue=settings.task_queue)
    listener = make_listener(sink, confirmations=2)
    stray = await driver.pay()  # a booking id this service never issued
    await driver.mine(3)
    await listener.sync_once()  # starts the orphan refund; no worker runs it yet

    await driver.rpc("anvil_reorg", 4, [])  # deeper than the 2 confirmations
    await driver.mine(1)
    await listener.sync_once()
    assert (
        listener.metrics.events.labels("BookingCreatedAndPaid", "reverted_signalled")._value.get()
        == 1
    )

    handle = temporal_client.get_workflow_handle(
        orphan_workflow_id(stray.chain_booking_id), result_type=OrphanResult
    )
    # The orphan workflow is all this test runs.
    async with (
        activity_dependencies(settings) as activities,
        Worker(
            temporal_client,
            task_queue=settings.task_queue,
            workflows=[OrphanPaymentWorkflow],
            activities=activities,
        ),
    ):
        result = await handle.result()

    assert not result.refunded
    assert await _usdc_balance(driver, driver.escrow) == escrow_before
    assert (
        await driver.rpc("eth_getTransactionCount", driver.operator.address, "latest")
        == operator_nonce
    )
    rows = await event_rows(engine)
    assert [(r.tx_hash, r.status) for r in rows] == [(stray.tx_hash, "REORGED")]
    async with engine.connect() as conn:
        reason = await conn.scalar(text("SELECT status_reason FROM blockchain_events"))
    assert reason == "orphan: orphan_payment_vanished"


async def _usdc_balance(driver: EscrowDriver, holder: str) -> int:
    data = driver.usdc_abi.encode_call("balanceOf", holder)
    call = {"to": driver.deployment.usdc, "data": "0x" + data.hex()}
    return int(await driver.rpc("eth_call", call, "latest"), 16)


@dataclass
class PollingWorkflowSink(RecordingSink):
    """While the listener sends its reverts, a workflow's own poll writes a row it applied
    from a block of the new chain (the chaos run's race: the row was then marked REORGED,
    re-stored RECEIVED, and the workflow, which had applied it, left it RECEIVED for good)."""

    engine: Any = None
    written: list[str] = field(default_factory=list)

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        if not self.written:
            tx = "0x" + secrets.token_hex(32)
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO blockchain_events (chain_id, tx_hash, log_index,"
                        " block_number, block_hash, contract_address, event_type,"
                        " chain_booking_id, payload, status, processed_at)"
                        " SELECT chain_id, :tx, 0, :block, :hash, contract_address,"
                        " 'ServiceCompleted', chain_booking_id, '{}', 'PROCESSED', now()"
                        " FROM blockchain_events WHERE tx_hash = :reverted"
                    ),
                    {
                        "tx": tx,
                        "block": event.identity.block_number + 1,
                        "hash": "0x" + secrets.token_hex(32),
                        "reverted": event.identity.tx_hash.lower(),
                    },
                )
            self.written.append(tx)
        return await super().revert(booking_id, event)


async def test_a_row_a_workflow_wrote_during_the_rewind_is_not_marked_reorged(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    sink = PollingWorkflowSink(engine=engine)
    _booking, paid, listener = await _paid_and_delivered(driver, engine, make_listener, sink)

    await driver.rpc("anvil_reorg", 4, [])
    await driver.mine(1)
    await listener.sync_once()

    assert sink.keys("revert") == [sink.calls[0].event.key]
    statuses = {r.tx_hash: r.status for r in await event_rows(engine)}
    assert statuses[paid.tx_hash] == "REORGED"  # the orphaned payment, reverted
    (polled,) = sink.written
    assert statuses[polled] == "PROCESSED"  # never reverted: left as its workflow wrote it
