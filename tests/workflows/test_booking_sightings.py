"""`payment_seen`: a payment shown before its confirmations, never applied before them."""

from __future__ import annotations

import asyncio
import dataclasses

from temporalio.client import WorkflowHandle

from tests.workflows.fakes import payment_event
from workflows import BookingWorkflow
from workflows.types import BookingStatus, BookingView, PaymentSighting

S = BookingStatus


async def seen(
    handle: WorkflowHandle[BookingWorkflow, BookingView], confirmations: int | None
) -> BookingView:
    """The view once its sighting shows `confirmations` (None: once nothing is shown)."""
    for _ in range(250):
        view = await handle.query(BookingWorkflow.status)
        shown = view.payment_seen
        if (shown.confirmations if shown is not None else None) == confirmations:
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"payment_seen never showed {confirmations}: {view.payment_seen}")


async def test_a_sighting_shows_n_of_n_and_only_the_confirmed_payment_pays(harness):
    booking = await harness.booking(confirmations=2)
    handle = await harness.start(booking)
    paid = payment_event(booking)
    await handle.signal(BookingWorkflow.payment_seen, PaymentSighting(event=paid, confirmations=0))
    view = await seen(handle, 0)
    assert view.status is S.PENDING_PAYMENT
    assert view.payment_seen is not None
    assert (view.payment_seen.tx_hash, view.payment_seen.required) == (paid.identity.tx_hash, 2)

    for confirmations in (1, 1, 0):  # a repeat and a stale one change nothing
        sighting = PaymentSighting(event=paid, confirmations=confirmations)
        await handle.signal(BookingWorkflow.payment_seen, sighting)
    view = await seen(handle, 1)
    assert view.status is S.PENDING_PAYMENT

    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    view = await harness.wait_for(handle, S.PAID)
    assert view.payment_seen is None
    rows = [(t.action, t.from_status, t.to_status, t.reason) for t in harness.fakes.transitions]
    assert rows == [
        (
            "payment_seen",
            S.PENDING_PAYMENT,
            S.PENDING_PAYMENT,
            "payment seen, 0 of 2 confirmations",
        ),
        (
            "payment_seen",
            S.PENDING_PAYMENT,
            S.PENDING_PAYMENT,
            "payment seen, 1 of 2 confirmations",
        ),
        ("payment_confirmed", S.PENDING_PAYMENT, S.PAID, None),
    ]
    # A sighting writes no money: no event marked, no settlement, no transaction column.
    for sighting_row in harness.fakes.transitions[:2]:
        assert sighting_row.event is None
        assert sighting_row.settlement is None
        assert sighting_row.sent is None
        assert sighting_row.tx_hash == paid.identity.tx_hash

    # A late sighting of the applied payment is moot.
    late = PaymentSighting(event=paid, confirmations=1)
    await handle.signal(BookingWorkflow.payment_seen, late)
    await handle.signal(BookingWorkflow.payment_seen, dataclasses.replace(late, removed=True))
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PAID
    assert view.payment_seen is None
    assert len(harness.fakes.transitions) == 3


async def test_a_removed_sighting_clears_it_and_the_booking_stays_unpaid(harness):
    booking = await harness.booking(confirmations=2)
    handle = await harness.start(booking)
    paid = payment_event(booking)
    sighting = PaymentSighting(event=paid, confirmations=0)
    await handle.signal(BookingWorkflow.payment_seen, sighting)
    await seen(handle, 0)
    # A removal of another inclusion (another block) is not the one shown: nothing changes.
    elsewhere = dataclasses.replace(
        paid, identity=dataclasses.replace(paid.identity, block_hash="0x" + "ee" * 32)
    )
    await handle.signal(
        BookingWorkflow.payment_seen,
        PaymentSighting(event=elsewhere, confirmations=0, removed=True),
    )
    await handle.signal(BookingWorkflow.payment_seen, dataclasses.replace(sighting, removed=True))
    view = await seen(handle, None)
    assert view.status is S.PENDING_PAYMENT
    assert harness.fakes.actions() == ["payment_seen", "payment_seen_cleared"]
    assert harness.fakes.transitions[-1].to_status is S.PENDING_PAYMENT


async def test_a_sighting_with_other_terms_is_ignored_with_its_reason(harness):
    booking = await harness.booking(confirmations=2)
    handle = await harness.start(booking)
    wrong = payment_event(booking, amount=booking.amount_units - 1)
    for confirmations in (0, 1):
        sighting = PaymentSighting(event=wrong, confirmations=confirmations)
        await handle.signal(BookingWorkflow.payment_seen, sighting)
    foreign = dataclasses.replace(payment_event(booking), chain_booking_id="0x" + "ab" * 32)
    await handle.signal(
        BookingWorkflow.payment_seen, PaymentSighting(event=foreign, confirmations=0)
    )
    await harness.until(lambda: len(harness.fakes.transitions) >= 2, "both are recorded")
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PENDING_PAYMENT
    assert view.payment_seen is None
    assert view.rejected_events == 0  # a sighting is not an event the booking refused
    reasons = [(t.action, t.to_status, t.reason) for t in harness.fakes.transitions]
    assert reasons == [
        (
            "sighting_ignored",
            S.PENDING_PAYMENT,
            "sighting ignored: payment event differs in amount",
        ),
        (
            "sighting_ignored",
            S.PENDING_PAYMENT,
            f"sighting ignored: event for chain booking {'0x' + 'ab' * 32},"
            f" not {booking.chain_booking_id}",
        ),
    ]
    assert harness.fakes.refunds_sent == []
