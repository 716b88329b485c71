"""Which escrow events are an orphan's (pure rule shared by the invariants and chaos checks)."""

from __future__ import annotations

from typing import Any

from activities.reconcile.orphan_flows import HeldTxs, orphan_flows
from chain.events import BookingCancelled, BookingCreatedAndPaid, EventIdentity, LogPosition

CBID = "0x" + "ab" * 32
PAY_TX, REFUND_TX = "0x" + "01" * 32, "0x" + "02" * 32
AMOUNT = 100 * 10**6


def _where(tx_hash: str, block: int) -> dict[str, Any]:
    return {
        "identity": EventIdentity(chain_id=1, tx_hash=tx_hash, log_index=1),
        "position": LogPosition(block_number=block, block_hash=f"0x{block:064x}"),
        "contract": "0xescrow",
        "booking_id": CBID,
    }


def _paid() -> BookingCreatedAndPaid:
    return BookingCreatedAndPaid(
        **_where(PAY_TX, 10),
        customer="0xc",
        provider="0xp",
        inviter="0x0",
        amount=AMOUNT,
        platform_fee_rate=1000,
        inviter_fee_rate=0,
    )


def _refunded() -> BookingCancelled:
    return BookingCancelled(
        **_where(REFUND_TX, 11),
        cancelled_by="0xoperator",
        customer_amount=AMOUNT,
        provider_amount=0,
        platform_amount=0,
        inviter_amount=0,
        reason="orphan_refund",
    )


def test_late_payment_on_a_cancelled_unpaid_booking_and_its_refund_are_the_orphans():
    rows = {CBID: HeldTxs(booking_id="b", cancelled=True)}
    assert orphan_flows([_paid()], rows).unrefunded == {CBID: AMOUNT}
    flows = orphan_flows([_paid(), _refunded()], rows)
    assert flows.unrefunded == {}
    assert _paid() in flows
    assert _refunded() in flows


def test_payment_of_a_live_booking_is_the_bookings_even_before_it_is_applied():
    # Reconcile must still see a missed payment as money no booking holds.
    flows = orphan_flows([_paid()], {CBID: HeldTxs(booking_id="b")})
    assert flows.unrefunded == {}
    assert _paid() not in flows


def test_refund_the_booking_recorded_is_its_own_settlement():
    row = HeldTxs(booking_id="b", cancelled=True, txs={BookingCancelled.NAME: REFUND_TX})
    flows = orphan_flows([_paid(), _refunded()], {CBID: row})
    assert flows.unrefunded == {}
    assert _paid() in flows
    assert _refunded() not in flows


def test_a_cancelled_booking_that_holds_its_payment_has_no_orphan():
    row = HeldTxs(
        booking_id="b",
        cancelled=True,
        txs={BookingCreatedAndPaid.NAME: PAY_TX, BookingCancelled.NAME: REFUND_TX},
    )
    flows = orphan_flows([_paid(), _refunded()], {CBID: row})
    assert flows.unrefunded == {}
    assert not flows.keys


def test_payment_for_no_booking_stays_unrefunded_until_released():
    assert orphan_flows([_paid()], {}).unrefunded == {CBID: AMOUNT}
    assert orphan_flows([_paid(), _refunded()], {}).unrefunded == {}
