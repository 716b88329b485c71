"""Chain signals: duplicates, early events, contradictions, foreign events and reorgs."""

from __future__ import annotations

import dataclasses

from tests.workflows.fakes import cancellation_event, completion_event, payment_event
from workflows import BookingWorkflow
from workflows.types import BookingStatus, EventOutcome

S = BookingStatus


async def test_duplicate_payment_signal_is_a_no_op(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    paid = payment_event(booking)
    for _ in range(3):
        await handle.signal(BookingWorkflow.payment_confirmed, paid)
    # a redelivery from another block of the same (chain, tx, log) is the same event
    moved = dataclasses.replace(
        paid, identity=dataclasses.replace(paid.identity, block_hash="0x" + "ff" * 32)
    )
    await handle.signal(BookingWorkflow.payment_confirmed, moved)
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking))
    result = await handle.result()  # FIFO inbox: the duplicates were handled before this
    assert result.status is S.COMPLETED
    assert harness.fakes.actions() == ["payment_confirmed", "service_completed"]
    assert result.rejected_events == 0


async def test_completion_before_payment_is_held_and_applied_in_order(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    done = completion_event(booking)
    await handle.signal(BookingWorkflow.service_completed, done)
    view = await harness.wait_for(handle, S.PENDING_PAYMENT)
    for _ in range(50):
        view = await handle.query(BookingWorkflow.status)
        if view.pending_event_keys:
            break
    assert view.pending_event_keys == [done.key]
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert result.pending_event_keys == []
    assert harness.fakes.actions() == ["payment_confirmed", "service_completed"]


async def test_payment_with_wrong_amount_fails_the_booking_and_refunds(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    wrong = payment_event(booking, amount=booking.amount_units - 1)
    await handle.signal(BookingWorkflow.payment_confirmed, wrong)
    view = await harness.wait_for(handle, S.FAILED)
    assert view.reason == "payment event differs in amount"
    await harness.until(lambda: len(harness.fakes.refunds_sent) > 0, "the refund is sent")
    assert len(harness.fakes.refunds_sent) == 1
    assert harness.fakes.transitions[0].event_outcome is EventOutcome.FAILED
    # the refund lands: recorded, and the workflow ends FAILED with nothing held
    refund = cancellation_event(booking)
    await handle.signal(BookingWorkflow.booking_cancelled, refund)
    result = await handle.result()
    assert result.status is S.FAILED
    assert harness.fakes.actions() == ["contradiction", "refund_recorded"]


async def test_cancellation_split_never_authorized_is_escalated(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    rogue = cancellation_event(booking, customer=10_000_000, provider=90_000_000)
    await handle.signal(BookingWorkflow.booking_cancelled, rogue)
    result = await handle.result()
    assert result.status is S.FAILED
    assert result.reason == "cancellation split was never authorized for this booking"
    record = harness.fakes.transitions[-1]
    # the chain is the truth for money: the legs are recorded as they happened
    assert (record.settlement.customer_amount, record.settlement.provider_amount) == (
        10_000_000,
        90_000_000,
    )


async def test_event_for_another_booking_is_recorded_and_ignored(harness):
    booking = await harness.booking()
    other = await harness.booking()
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(other))
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    view = await harness.wait_for(handle, S.PAID)
    assert view.rejected_events == 1
    rejected = harness.fakes.transitions[0]
    assert rejected.action == "event_rejected"
    assert rejected.event_outcome is None  # not ours to mark
    assert harness.fakes.actions() == ["event_rejected", "payment_confirmed"]


async def test_second_payment_while_paid_is_rejected_not_applied(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking))
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert harness.fakes.actions() == ["payment_confirmed", "event_rejected", "service_completed"]
    assert harness.fakes.transitions[1].event_outcome is EventOutcome.FAILED


async def test_reorged_payment_rolls_back_and_the_reincluded_one_applies(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    paid = payment_event(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    await harness.wait_for(handle, S.PAID)
    await handle.signal(BookingWorkflow.chain_event_reverted, paid)
    view = await harness.wait_for(handle, S.PENDING_PAYMENT)
    assert view.applied_event_keys == []
    assert view.monitored_tx_hash == paid.identity.tx_hash
    # re-mined in a later block: same identity, applies again
    again = dataclasses.replace(
        paid,
        identity=dataclasses.replace(
            paid.identity, block_number=paid.identity.block_number + 5, block_hash="0x" + "12" * 32
        ),
    )
    await handle.signal(BookingWorkflow.payment_confirmed, again)
    await harness.wait_for(handle, S.PAID)
    assert harness.fakes.actions() == ["payment_confirmed", "payment_reorged", "payment_confirmed"]
    assert harness.fakes.transitions[1].event_outcome is EventOutcome.REORGED


async def test_revert_of_a_held_early_event_just_drops_it(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    done = completion_event(booking)
    await handle.signal(BookingWorkflow.service_completed, done)
    await handle.signal(BookingWorkflow.chain_event_reverted, done)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    view = await harness.wait_for(handle, S.PAID)
    assert view.pending_event_keys == []
    assert harness.fakes.actions() == ["payment_confirmed"]
