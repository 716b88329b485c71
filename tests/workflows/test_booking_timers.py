"""Timers with their real durations: payment deadline, monitoring window + polling, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.workflows.fakes import CUSTOMER, PROVIDER, completion_event, payment_event, tx_hash
from workflows import BookingWorkflow
from workflows.types import (
    AuthorizePaymentRequest,
    BookingStatus,
    CancellationRequest,
    EmergencyCancelRequest,
    OnChainStatus,
    PartyRole,
    ReportTransactionRequest,
    TransactionKind,
    TxStatus,
)

S = BookingStatus


async def test_unpaid_booking_is_cancelled_at_the_payment_deadline(harness):
    booking = await harness.booking()
    before = await harness.env.get_current_time()
    handle = await harness.start(booking)
    result = await handle.result()  # the server skips the 30 minutes
    assert result.status is S.CANCELLED
    assert result.reason == "payment_timeout"
    assert harness.fakes.actions() == ["payment_timeout"]
    cancelled_at = harness.fakes.transitions[0].occurred_at
    # the deadline runs from the workflow's start, which is after `before`
    assert timedelta(minutes=30) <= cancelled_at - before < timedelta(minutes=31)
    # one last look at the chain before giving up on the payment
    assert len(harness.fakes.observations) == 1


async def test_payment_mined_at_the_deadline_but_unconfirmed_postpones_the_timeout(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    paid = payment_event(booking)
    harness.fakes.onchain_status = OnChainStatus.PAID  # mined, not yet confirmed: no event

    def confirm_on_third_look(_request):
        if len(harness.fakes.observations) == 3:
            harness.fakes.chain_events = [paid]

    harness.fakes.on_observe = confirm_on_third_look
    await harness.env.sleep(timedelta(minutes=31))
    view = await harness.wait_for(handle, S.PAID)
    assert view.applied_event_keys == [paid.key]
    assert harness.fakes.actions() == ["payment_confirmed"]


async def test_poll_finds_a_payment_the_listener_missed_and_the_late_push_is_a_no_op(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    tx = tx_hash()
    report = await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=tx,
            kind=TransactionKind.PAYMENT,
            role=PartyRole.CUSTOMER,
            wallet=CUSTOMER,
        ),
    )
    assert report.monitoring_until > await harness.env.get_current_time()
    paid = payment_event(booking, tx=tx)

    # The listener is silent. During the 30 s push grace nobody polls...
    await harness.env.sleep(timedelta(seconds=25))
    assert harness.fakes.observations == []

    # ...then the workflow polls every 10 s; the chain confirms the payment on the 3rd poll.
    def confirm_on_third_poll(_request):
        if len(harness.fakes.observations) == 3:
            harness.fakes.chain_events = [paid]

    harness.fakes.on_observe = confirm_on_third_poll
    await harness.env.sleep(timedelta(seconds=40))
    view = await harness.wait_for(handle, S.PAID)
    assert [o.tx_hash for o in harness.fakes.observations] == [tx, tx, tx]
    assert view.monitoring_until is None  # the window closed when the payment landed

    # The listener's push arrives late with the same identity: nothing changes.
    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking))
    await harness.wait_for(handle, S.COMPLETED)
    assert harness.fakes.actions() == ["payment_confirmed", "service_completed"]


async def test_window_ends_quietly_and_booking_keeps_waiting(harness):
    booking = await harness.booking(payment_deadline_seconds=3600)
    handle = await harness.start(booking)
    await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    await harness.env.sleep(timedelta(minutes=10))
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PENDING_PAYMENT
    assert view.monitoring_until is None
    # polls at 30 s, 40 s, ... 180 s after the authorization, then silence
    assert len(harness.fakes.observations) == 16
    assert harness.fakes.actions() == []


async def test_reverted_payment_tx_is_recorded_and_booking_stays_payable(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    tx = tx_hash()
    await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=tx,
            kind=TransactionKind.PAYMENT,
            role=PartyRole.CUSTOMER,
            wallet=CUSTOMER,
        ),
    )
    harness.fakes.tx_status = TxStatus.REVERTED
    await harness.env.sleep(timedelta(seconds=35))
    for _ in range(100):
        if harness.fakes.actions():
            break
        await harness.env.sleep(timedelta(seconds=1))
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PENDING_PAYMENT
    assert harness.fakes.actions() == ["transaction_reverted"]
    assert harness.fakes.transitions[0].tx_hash == tx
    assert view.monitoring_until is None


async def test_unused_cancellation_authorization_expires_back_to_paid(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    harness.fakes.onchain_status = OnChainStatus.PAID
    result = await handle.execute_update(
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.PROVIDER, wallet=PROVIDER, reason="sick"),
    )
    assert result.status is S.PENDING_CANCELLATION
    assert result.authorization is not None
    assert result.authorization.split.customer_amount == booking.amount_units
    await harness.env.sleep(timedelta(minutes=4))
    assert (await handle.query(BookingWorkflow.status)).status is S.PENDING_CANCELLATION
    await harness.env.sleep(timedelta(minutes=2))
    view = await harness.wait_for(handle, S.PAID)
    assert view.cancellation_authorization is None
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "cancellation_authorized",
        "cancellation_expired",
    ]


async def test_reported_completion_that_never_lands_does_not_block_auto_complete(harness):
    booking = await harness.booking(scheduled_in=timedelta(hours=1))
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    bogus = tx_hash()
    await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=bogus,
            kind=TransactionKind.COMPLETION,
            role=PartyRole.CUSTOMER,
            wallet=CUSTOMER,
        ),
    )
    # A report never moves the status: the booking stays PAID until the chain says otherwise.
    assert (await handle.query(BookingWorkflow.status)).status is S.PAID
    harness.fakes.tx_status = TxStatus.PENDING  # never mined
    await harness.env.sleep(timedelta(hours=3, minutes=1))
    operator_tx = "0x" + "c0" * 32
    view = await harness.wait_for(handle, S.PENDING_COMPLETION)
    for _ in range(200):
        if view.completion_tx_hash == operator_tx:
            break
        await asyncio.sleep(0.02)
        view = await handle.query(BookingWorkflow.status)
    assert view.completion_tx_hash == operator_tx
    assert len(harness.fakes.completions_sent) == 1
    await handle.signal(
        BookingWorkflow.service_completed, completion_event(booking, tx=view.completion_tx_hash)
    )
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "auto_complete_sent",
        "service_completed",
    ]


async def test_reverted_emergency_refund_returns_the_booking_to_paid(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    harness.fakes.tx_status = TxStatus.REVERTED
    sent = await handle.execute_update(
        BookingWorkflow.emergency_cancel,
        EmergencyCancelRequest(operator="ops@bookme", reason="fraud"),
    )
    assert sent.status is S.PENDING_CANCELLATION
    await harness.env.sleep(timedelta(seconds=35))
    view = await harness.wait_for(handle, S.PAID)
    assert view.refund_tx_hash is None
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "emergency_cancel_sent",
        "refund_reverted",
    ]
