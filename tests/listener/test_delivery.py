"""Store-then-signal delivery, confirmations, and exactly-once across restarts (real anvil + Postgres)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from db.statuses import BlockchainEventStatus
from listener.closed_events import ORPHAN_CLOSED_REASON, SAME_TX_REASON
from tests.listener.conftest import MakeListener, cursor_row, event_rows, insert_booking
from tests.listener.driver import EscrowDriver
from tests.listener.fakes import RecordingSink, SimulatedCrash
from workflows.types import ChainEventKind

pytestmark = pytest.mark.integration


async def test_known_booking_is_signalled_and_unknown_goes_to_orphan(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    known = str(uuid.uuid4())
    paid = await driver.pay(known)
    await insert_booking(engine, known, paid.chain_booking_id)
    stray = await driver.pay()
    completion = await driver.complete(paid.chain_booking_id)
    sink = RecordingSink()

    await make_listener(sink).sync_once()

    # Bookings are signalled concurrently; one booking's events always in chain order.
    delivered = [c for c in sink.calls if c.method == "deliver"]
    orphaned = [c for c in sink.calls if c.method == "orphan"]
    assert [(c.booking_id, c.event.kind) for c in delivered] == [
        (known, ChainEventKind.PAYMENT),
        (known, ChainEventKind.COMPLETION),
    ]
    payment = delivered[0].event
    assert payment.chain_booking_id == paid.chain_booking_id
    assert payment.identity.tx_hash == paid.tx_hash
    assert payment.payment is not None
    assert payment.payment.amount == 10 * 10**6
    assert delivered[1].event.identity.tx_hash == completion
    assert [c.event.chain_booking_id for c in orphaned] == [stray.chain_booking_id]
    rows = await event_rows(engine)
    assert [(r.tx_hash, r.status) for r in rows] == [
        (paid.tx_hash, "RECEIVED"),
        (stray.tx_hash, "RECEIVED"),
        (completion, "RECEIVED"),
    ]
    assert str(rows[0].booking_id) == known
    assert rows[1].booking_id is None
    head = await driver.head()
    assert (await cursor_row(engine)).last_block_number == head


async def test_events_wait_for_their_confirmations(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    sink = RecordingSink()
    listener = make_listener(sink, confirmations=3)
    paid = await driver.pay()
    paid_block = (await driver.receipt(paid.tx_hash))["blockNumber"]

    await listener.sync_once()
    await driver.mine(2)
    await listener.sync_once()
    assert sink.calls == []
    assert (await cursor_row(engine)).last_block_number == int(paid_block, 16) - 1

    await driver.mine(1)
    await listener.sync_once()
    assert [c.event.identity.tx_hash for c in sink.calls] == [paid.tx_hash]
    assert (await cursor_row(engine)).last_block_number == int(paid_block, 16)


async def test_crash_between_store_and_signal_loses_nothing(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    payments = await driver.pay_many(6)
    crashing = RecordingSink(crash_after=2)
    with pytest.raises(ExceptionGroup) as crashed:
        await make_listener(crashing, signal_concurrency=1).sync_once()
    assert crashed.group_contains(SimulatedCrash)
    # Every event is stored, none of the checkpoint moved past the batch.
    assert len(await event_rows(engine)) == 6
    cursor = await cursor_row(engine)
    assert cursor is None or cursor.last_block_number < await driver.head()

    restarted = RecordingSink()
    await make_listener(restarted).sync_once()

    everything = set(crashing.applied) | set(restarted.applied)
    assert len(everything) == 6
    assert {
        e.identity.tx_hash for e in [*crashing.applied.values(), *restarted.applied.values()]
    } == {p.tx_hash for p in payments}
    # The ones signalled before the crash may be re-sent; the rest arrive exactly once.
    assert not set(restarted.keys("orphan")) - everything
    assert len(restarted.keys("orphan")) == len(set(restarted.keys("orphan")))
    assert len(await event_rows(engine)) == 6
    assert (await cursor_row(engine)).last_block_number == await driver.head()


async def test_crash_between_signal_and_checkpoint_then_processed_events_are_not_resent(
    driver: EscrowDriver, engine, make_listener: MakeListener, monkeypatch
):
    await driver.pay_many(4)
    first = RecordingSink()
    listener = make_listener(first)

    advance = listener.store.advance

    async def crash(cursor, blocks, **kwargs):
        if not blocks:  # the start anchor, written before any range is read
            return await advance(cursor, blocks, **kwargs)
        raise SimulatedCrash("died before the checkpoint")

    monkeypatch.setattr(listener.store, "advance", crash)
    with pytest.raises(SimulatedCrash):
        await listener.sync_once()
    assert len(first.applied) == 4
    assert (await cursor_row(engine)).last_block_number == driver.deployment.block_number - 1

    # The workflows applied two of them meanwhile (their activity marks the row PROCESSED).
    rows = await event_rows(engine)
    processed = {rows[0].tx_hash, rows[1].tx_hash}
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text("UPDATE blockchain_events SET status = :s WHERE tx_hash = ANY(:txs)"),
            {"s": BlockchainEventStatus.PROCESSED.value, "txs": list(processed)},
        )

    second = RecordingSink()
    await make_listener(second).sync_once()
    resent = {c.event.identity.tx_hash for c in second.calls}
    assert resent == {r.tx_hash for r in rows} - processed
    assert len(await event_rows(engine)) == 4
    assert (await cursor_row(engine)).last_block_number == await driver.head()


async def test_events_for_a_closed_workflow_get_an_outcome_not_left_received(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    settled, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = await driver.pay(settled)
    second = await driver.pay(other)
    await insert_booking(engine, settled, first.chain_booking_id)
    await insert_booking(engine, other, second.chain_booking_id)
    # The first booking already holds its payment (a re-inclusion after it closed); the
    # second closed unpaid, so the payment goes to the orphan refund, whose workflow (already
    # finished here) is not there to apply it either.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE bookings SET status = 'COMPLETED', blockchain_tx_hash = :tx WHERE id = :id"
            ),
            {"tx": first.tx_hash, "id": uuid.UUID(settled)},
        )
        await conn.execute(
            text("UPDATE bookings SET status = 'CANCELLED' WHERE id = :id"),
            {"id": uuid.UUID(other)},
        )
    sink = RecordingSink(closed={settled, other}, closed_orphans={second.chain_booking_id})

    await make_listener(sink).sync_once()

    async with engine.connect() as conn:
        rows = {
            r.tx_hash: r
            for r in await conn.execute(
                text("SELECT tx_hash, status, status_reason FROM blockchain_events")
            )
        }
    assert rows[first.tx_hash].status == BlockchainEventStatus.PROCESSED.value
    assert rows[first.tx_hash].status_reason == SAME_TX_REASON
    assert rows[second.tx_hash].status == BlockchainEventStatus.FAILED.value
    assert rows[second.tx_hash].status_reason == ORPHAN_CLOSED_REASON
    assert [c.event.identity.tx_hash for c in sink.calls if c.method == "orphan"] == [
        second.tx_hash
    ]
    assert sink.applied == {}


async def test_payment_for_a_closed_orphan_workflow_is_failed_with_its_reason(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    stray = await driver.pay()  # an id this service never issued
    sink = RecordingSink(closed_orphans={stray.chain_booking_id})

    await make_listener(sink).sync_once()

    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT status, status_reason FROM blockchain_events"))
        ).one()
    assert (row.status, row.status_reason) == ("FAILED", ORPHAN_CLOSED_REASON)
    assert [c.method for c in sink.calls] == ["orphan"]
