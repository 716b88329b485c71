"""A reorg that removes a completion or cancellation: the booking follows the chain back."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from tests.workflows.fakes import OPERATOR, cancellation_event, completion_event, payment_event
from workflows import BookingWorkflow
from workflows.types import (
    BookingStatus,
    ChainEventSignal,
    EmergencyCancelRequest,
    EventOutcome,
)

S = BookingStatus


def _remined(event: ChainEventSignal, *, log_index: int | None = None) -> ChainEventSignal:
    """The same transaction in a later block (a re-inclusion may move its log index too)."""
    identity = event.identity
    return dataclasses.replace(
        event,
        identity=dataclasses.replace(
            identity,
            block_number=identity.block_number + 3,
            block_hash="0x" + "ab" * 32,
            log_index=identity.log_index if log_index is None else log_index,
        ),
    )


async def test_settled_booking_stays_open_for_the_finality_period_then_closes(harness):
    booking = await harness.booking(settlement_finality_seconds=600)
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking))
    await harness.wait_for(handle, S.COMPLETED)
    described = await handle.describe()
    assert described.status is WorkflowExecutionStatus.RUNNING
    started = await harness.env.get_current_time()
    result = await handle.result()  # the test server skips the finality period
    assert result.status is S.COMPLETED
    assert await harness.env.get_current_time() - started >= timedelta(seconds=590)


async def test_reorged_completion_goes_back_to_paid_and_the_reincluded_one_applies(harness):
    booking = await harness.booking(settlement_finality_seconds=600)
    handle = await harness.start(booking)
    done = completion_event(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await handle.signal(BookingWorkflow.service_completed, done)
    await harness.wait_for(handle, S.COMPLETED)
    await handle.signal(BookingWorkflow.chain_event_reverted, done)
    view = await harness.wait_for(handle, S.PAID)
    assert done.key not in view.applied_event_keys
    assert view.monitored_tx_hash == done.identity.tx_hash
    # back at another log index: a different identity, the same money
    again = _remined(done, log_index=done.identity.log_index + 1)
    await handle.signal(BookingWorkflow.service_completed, again)
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert result.applied_event_keys[-1] == again.key
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "service_completed",
        "settlement_reorged",
        "service_completed",
    ]
    reorged = harness.fakes.transitions[2]
    assert reorged.event_outcome is EventOutcome.REORGED
    assert reorged.event == done
    assert harness.fakes.transitions[3].settlement is not None


async def test_reorged_cancellation_that_never_returns_leaves_the_booking_paid(harness):
    booking = await harness.booking(settlement_finality_seconds=600)
    handle = await harness.start(booking)
    refund = cancellation_event(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await handle.signal(BookingWorkflow.booking_cancelled, refund)
    await harness.wait_for(handle, S.CANCELLED)
    await handle.signal(BookingWorkflow.chain_event_reverted, refund)
    view = await harness.wait_for(handle, S.PAID)
    assert view.cancellation_authorization is None
    # the money is in escrow again: at release time the auto-complete pays the provider
    await harness.env.sleep(timedelta(days=4))
    await harness.until(lambda: len(harness.fakes.completions_sent) == 1, "auto-complete sent")
    sent = "0x" + "c0" * 32  # the fake sender's transaction
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking, tx=sent))
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "booking_cancelled",
        "settlement_reorged",
        "auto_complete_sent",
        "service_completed",
    ]


async def test_reorged_emergency_refund_is_sent_again(harness):
    booking = await harness.booking(settlement_finality_seconds=600)
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    request = EmergencyCancelRequest(operator="ops@bookme", reason="fraud report")
    sent = await handle.execute_update(BookingWorkflow.emergency_cancel, request)
    refund = cancellation_event(booking, by=OPERATOR, tx=sent.tx_hash)
    await handle.signal(BookingWorkflow.booking_cancelled, refund)
    await harness.wait_for(handle, S.CANCELLED)
    await handle.signal(BookingWorkflow.chain_event_reverted, refund)
    await harness.wait_for(handle, S.PENDING_CANCELLATION)
    await harness.until(lambda: len(harness.fakes.refunds_sent) == 2, "the refund is re-sent")
    # never the provider's money: no auto-complete while the refund is owed
    await handle.signal(BookingWorkflow.booking_cancelled, _remined(refund))
    result = await handle.result()
    assert result.status is S.CANCELLED
    assert harness.fakes.completions_sent == []
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "emergency_cancel_sent",
        "booking_cancelled",
        "settlement_reorged",
        "booking_cancelled",
    ]


async def test_no_finality_period_closes_at_once_and_a_late_revert_finds_nobody(harness):
    booking = await harness.booking(settlement_finality_seconds=0)
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking))
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert harness.fakes.actions() == ["payment_confirmed", "service_completed"]
