"""Sightings on real anvil: a payment forwarded at 0 confirmations, delivered only at depth,
withdrawn when a reorg takes its block first, and never forwarded for an unknown booking."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from structlog.testing import capture_logs

from listener.sink import SignalOutcome
from tests.listener.conftest import MakeListener, insert_booking
from tests.listener.driver import EscrowDriver
from tests.listener.fakes import RecordingSink
from workflows.types import PaymentSighting

pytestmark = pytest.mark.integration


@dataclass
class SightingRecorder(RecordingSink):
    """A RecordingSink that also records `payment_seen` signals."""

    sightings: list[tuple[str, PaymentSighting]] = field(default_factory=list)

    async def sighting(self, booking_id: str, sighting: PaymentSighting) -> SignalOutcome:
        self.sightings.append((booking_id, sighting))
        return SignalOutcome.SIGNALLED

    def seen(self) -> list[tuple[str, str, int, bool]]:
        """(booking, tx, confirmations, removed) of every sighting, in order."""
        return [
            (b, s.event.identity.tx_hash, s.confirmations, s.removed) for b, s in self.sightings
        ]


async def paid_booking(driver: EscrowDriver, engine) -> tuple[str, str, str]:
    """A booking row and its payment in the head block: (booking, tx hash, block hash)."""
    booking = str(uuid.uuid4())
    paid = await driver.pay(booking)
    await insert_booking(engine, booking, paid.chain_booking_id)
    receipt = await driver.receipt(paid.tx_hash)
    return booking, paid.tx_hash, receipt["blockHash"]


async def test_a_payment_is_seen_at_zero_confirmations_and_delivered_only_at_depth(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    booking, tx, block_hash = await paid_booking(driver, engine)
    sink = SightingRecorder()
    listener = make_listener(sink, confirmations=2, sightings=sink)

    await listener.sync_once()
    assert sink.seen() == [(booking, tx, 0, False)]
    assert sink.sightings[0][1].event.identity.block_hash == block_hash
    assert sink.calls == []  # nothing confirmed, nothing delivered

    await listener.sync_once()  # same head: nothing new to say
    await driver.mine(1)
    await listener.sync_once()
    assert sink.seen() == [(booking, tx, 0, False), (booking, tx, 1, False)]
    assert sink.calls == []

    await driver.mine(1)
    await listener.sync_once()
    assert [(c.method, c.booking_id, c.event.identity.tx_hash) for c in sink.calls] == [
        ("deliver", booking, tx)
    ]
    assert len(sink.sightings) == 2  # confirmed: payment_confirmed carries it from here
    assert listener.sightings is not None
    assert listener.sightings.live == {}
    label = ("payment_seen", "signalled")
    assert listener.metrics.events.labels(*label)._value.get() == 2


async def test_a_reorg_before_confirmation_withdraws_the_sighting(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    booking, tx, block_hash = await paid_booking(driver, engine)
    sink = SightingRecorder()
    listener = make_listener(sink, confirmations=2, sightings=sink)
    await listener.sync_once()
    assert sink.seen() == [(booking, tx, 0, False)]

    # The payment's block is replaced by one without it (anvil sends no `removed` logs).
    await driver.rpc("anvil_reorg", 1, [])
    await listener.sync_once()
    assert sink.seen() == [(booking, tx, 0, False), (booking, tx, 0, True)]
    withdrawn = sink.sightings[1][1]
    assert withdrawn.event.identity.block_hash == block_hash  # the inclusion that was shown

    await driver.mine(3)
    await listener.sync_once()
    assert len(sink.sightings) == 2
    assert sink.calls == []  # the payment never reached its confirmations


async def test_a_payment_reincluded_in_another_block_is_withdrawn_then_seen_again(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    booking, tx, block_hash = await paid_booking(driver, engine)
    sink = SightingRecorder()
    listener = make_listener(sink, confirmations=3, sightings=sink)
    await listener.sync_once()
    await driver.mine(1)
    await listener.sync_once()
    raw = await driver.rpc("eth_getRawTransactionByHash", tx)

    # The payment's block and the one after are replaced; the payment lands in the second.
    await driver.rpc("anvil_reorg", 2, [[raw, 1]])
    await listener.sync_once()
    receipt = await driver.receipt(tx)
    assert receipt["blockHash"] != block_hash
    seen = [(b, s.removed, s.event.identity.block_hash) for b, s in sink.sightings]
    assert seen == [
        (booking, False, block_hash),
        (booking, False, block_hash),
        (booking, True, block_hash),
        (booking, False, receipt["blockHash"]),
    ]
    assert sink.sightings[-1][1].confirmations == 0  # its new block is the head

    await driver.mine(3)
    await listener.sync_once()
    assert [(c.method, c.event.identity.block_hash) for c in sink.calls] == [
        ("deliver", receipt["blockHash"])
    ]


async def test_one_block_of_payments_is_seen_at_once_and_an_unknown_booking_only_logged(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    payments = await driver.pay_many(4, per_block=4)
    known, unknown = payments[:3], payments[3]  # no booking row has the last one's id
    for paid in known:
        await insert_booking(engine, paid.booking_uuid, paid.chain_booking_id)
    sink = SightingRecorder()
    listener = make_listener(sink, confirmations=2, sightings=sink)
    with capture_logs() as logs:
        await listener.sync_once()
        await driver.mine(1)
        await listener.sync_once()
    assert sorted(sink.seen()) == sorted(
        (p.booking_uuid, p.tx_hash, n, False) for p in known for n in (0, 1)
    )
    ignored = [e for e in logs if e["event"] == "listener_sighting_ignored"]
    assert [(e["reason"], e["chain_booking_id"]) for e in ignored] == [
        ("no booking has this chain booking id", unknown.chain_booking_id)
    ]
    label = ("payment_seen", "unknown_booking")
    assert listener.metrics.events.labels(*label)._value.get() == 1


async def test_a_payment_already_delivered_is_not_seen_again_after_a_restart_with_more_depth(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    booking, tx, _ = await paid_booking(driver, engine)
    before = RecordingSink()
    await make_listener(before, confirmations=0).sync_once()
    assert before.keys("deliver") != []

    # Restarted with 2 confirmations: its checkpoint is at the head, above head - 2.
    sink = SightingRecorder()
    listener = make_listener(sink, confirmations=2, sightings=sink)
    await listener.sync_once()
    await driver.mine(1)
    await listener.sync_once()
    assert sink.sightings == []
    assert sink.calls == []
    assert [(c.booking_id, c.event.identity.tx_hash) for c in before.calls] == [(booking, tx)]
