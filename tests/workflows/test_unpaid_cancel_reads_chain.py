"""An unpaid cancellation reads the chain before it closes the booking.

The workflow's PENDING_PAYMENT can be behind the chain. Chaos run seed 159905457 found it: a
workflow task applied a confirmed payment (its Postgres write committed), its worker was killed
and Temporal went down before the task completed, so the history never held the payment; the
next task carried the customer's cancellation, which closed the booking as unpaid, and then the
poll found the payment "after the booking was closed" (FAILED, full refund, one payment applied
twice in the projection). Time-skipping server, fake activities whose chain the test sets.
"""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.fakes import CUSTOMER, payment_event
from workflows import BookingWorkflow
from workflows.types import (
    AuthorizePaymentRequest,
    BookingStatus,
    CancellationRequest,
    OnChainStatus,
    PartyRole,
)

S = BookingStatus
CANCEL = CancellationRequest(reason="changed my mind", role=PartyRole.CUSTOMER, wallet=CUSTOMER)


async def _authorization_spent_by_our_clock(harness, **policy):
    """A booking whose only payment authorization expired by the workflow's clock: before the
    fix its cancellation closed at once, without a look at the chain."""
    booking = await harness.booking(authorization_ttl_seconds=60, **policy)
    handle = await harness.start(booking)
    await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    await harness.env.sleep(timedelta(seconds=90))
    return booking, handle


async def test_a_confirmed_payment_the_workflow_missed_pays_before_the_cancellation(harness):
    booking, handle = await _authorization_spent_by_our_clock(harness)
    paid = payment_event(booking)
    harness.fakes.onchain_status = OnChainStatus.PAID
    harness.fakes.chain_events = [paid]

    result = await handle.execute_update(BookingWorkflow.request_cancellation, CANCEL)

    # Judged as the paid cancellation it is: the policy's split, signed for the customer.
    assert result.status is S.PENDING_CANCELLATION
    assert result.authorization is not None
    assert result.authorization.requested_by is PartyRole.CUSTOMER
    assert harness.fakes.actions() == ["payment_confirmed", "cancellation_authorized"]
    # The listener's late push of the same payment is a no-op; nothing is refunded, and the
    # unused cancellation authorization expires back to PAID.
    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    await harness.env.sleep(timedelta(minutes=5))
    view = await handle.query(BookingWorkflow.status)
    assert view.applied_event_keys == [paid.key]
    assert view.status is S.PAID
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "cancellation_authorized",
        "cancellation_expired",
    ]
    assert harness.fakes.refunds_sent == []


async def test_a_payment_mined_but_not_confirmed_defers_the_cancellation_and_wins(harness):
    booking, handle = await _authorization_spent_by_our_clock(harness)
    harness.fakes.onchain_status = OnChainStatus.PAID  # in a block, not yet confirmed
    harness.fakes.chain_events = []

    result = await handle.execute_update(BookingWorkflow.request_cancellation, CANCEL)

    assert result.status is S.PENDING_PAYMENT
    assert result.cancels_at is not None
    await harness.env.sleep(timedelta(minutes=2))  # the deadline's checks: still unconfirmed
    assert (await handle.query(BookingWorkflow.status)).status is S.PENDING_PAYMENT
    paid = payment_event(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    view = await harness.wait_for(handle, S.PAID)
    assert view.applied_event_keys == [paid.key]
    assert harness.fakes.actions() == ["cancellation_requested", "payment_confirmed"]
    assert harness.fakes.refunds_sent == []


async def test_a_failed_chain_read_defers_the_cancellation_to_the_deadlines_check(harness):
    _booking, handle = await _authorization_spent_by_our_clock(harness)
    failing = {"reads": 0}

    def rpc_down(_request):
        # Every attempt of the cancellation's read and of the deadline's first check.
        if failing["reads"] < 6:
            failing["reads"] += 1
            raise RuntimeError("rpc: connection refused")

    harness.fakes.on_observe = rpc_down

    result = await handle.execute_update(BookingWorkflow.request_cancellation, CANCEL)

    assert failing["reads"] >= 3
    assert result.status is S.PENDING_PAYMENT
    assert result.cancels_at is not None
    final = await handle.result()  # a later check reads an empty chain and closes
    assert failing["reads"] == 6
    assert final.status is S.CANCELLED
    assert harness.fakes.actions() == ["cancellation_requested", "cancelled_unpaid"]


async def test_an_empty_chain_still_cancels_at_once(harness):
    _booking, handle = await _authorization_spent_by_our_clock(harness)

    result = await handle.execute_update(BookingWorkflow.request_cancellation, CANCEL)

    assert result.status is S.CANCELLED
    assert result.cancels_at is None
    assert harness.fakes.actions() == ["cancelled_unpaid"]
