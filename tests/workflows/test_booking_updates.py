"""Update validators reject wrong callers and states; a rejected update leaves the booking healthy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.workflows.fakes import CUSTOMER, OPERATOR, PROVIDER, cancellation_event, payment_event
from workflows import BookingWorkflow
from workflows.types import (
    AuthorizePaymentRequest,
    BookingStatus,
    CancellationRequest,
    EmergencyCancelRequest,
    PartyRole,
    ReportTransactionRequest,
    TransactionKind,
)

S = BookingStatus


async def _rejected(handle, update, request) -> tuple[str, str]:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, request)
    cause = info.value.cause
    return cause.type, cause.message  # type: ignore[attr-defined]


async def test_authorize_payment_rejects_strangers_and_stays_healthy(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    kind, message = await _rejected(
        handle, BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=PROVIDER)
    )
    assert kind == "WrongCaller"
    assert "customer" in message
    # still healthy: the real customer gets an authorization
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    assert auth.customer == CUSTOMER
    assert len(harness.fakes.payment_signings) == 1


async def test_repeat_authorization_returns_the_same_one_until_it_nearly_expires(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    request = AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    first = await handle.execute_update(BookingWorkflow.authorize_payment, request)
    again = await handle.execute_update(BookingWorkflow.authorize_payment, request)
    assert again == first
    await harness.env.sleep(timedelta(minutes=4, seconds=30))  # < 60 s of life left
    fresh = await handle.execute_update(BookingWorkflow.authorize_payment, request)
    assert fresh.nonce != first.nonce
    assert fresh.expires_at > first.expires_at
    signings = harness.fakes.payment_signings
    assert [s.idempotency_key.rsplit(":", 1)[1] for s in signings] == ["1", "2"]


async def test_authorization_expiry_never_outlives_the_payment_deadline(harness):
    booking = await harness.booking(payment_deadline_seconds=120)
    handle = await harness.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    view = await handle.query(BookingWorkflow.status)
    assert auth.expires_at <= view.payment_deadline


async def test_authorize_payment_rejected_once_paid(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    kind, _ = await _rejected(
        handle, BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    assert kind == "WrongState"


async def test_report_transaction_validates_hash_and_state(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    customer: dict[str, Any] = {"role": PartyRole.CUSTOMER, "wallet": CUSTOMER}
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash="0x1234", kind=TransactionKind.PAYMENT, **customer),
    )
    assert kind == "InvalidRequest"
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash="0x" + "ab" * 32, kind=TransactionKind.COMPLETION, **customer
        ),
    )
    assert kind == "WrongState"
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash="0x" + "ab" * 32, kind=TransactionKind.REFUND, **customer),
    )
    assert kind == "InvalidRequest"
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PENDING_PAYMENT
    assert view.monitoring_until is None


async def test_cancellation_rejects_the_wrong_party(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.CUSTOMER, wallet=PROVIDER, reason="x"),
    )
    assert kind == "WrongCaller"
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.CUSTOMER, wallet=CUSTOMER, reason="  "),
    )
    assert kind == "InvalidRequest"
    assert (await handle.query(BookingWorkflow.status)).status is S.PENDING_PAYMENT


async def test_unpaid_cancellation_closes_without_chain_action(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    result = await handle.execute_update(
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.CUSTOMER, wallet=CUSTOMER, reason="changed mind"),
    )
    assert result.status is S.CANCELLED
    assert result.authorization is None
    final = await handle.result()
    assert final.status is S.CANCELLED
    assert final.reason == "customer: changed mind"
    assert harness.fakes.cancellation_signings == []
    assert harness.fakes.refunds_sent == []


async def test_paid_customer_late_cancellation_splits_and_settles(harness):
    booking = await harness.booking(scheduled_in=timedelta(hours=3))
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    result = await handle.execute_update(
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.CUSTOMER, wallet=CUSTOMER, reason="late"),
    )
    auth = result.authorization
    assert auth is not None
    assert (auth.split.customer_amount, auth.split.provider_amount) == (50_000_000, 50_000_000)
    # asking again returns the same authorization
    again = await handle.execute_update(
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.CUSTOMER, wallet=CUSTOMER, reason="late"),
    )
    assert again.authorization == auth
    await handle.signal(
        BookingWorkflow.booking_cancelled,
        cancellation_event(booking, customer=50_000_000, provider=50_000_000, by=CUSTOMER),
    )
    final = await handle.result()
    assert final.status is S.CANCELLED
    settlement = harness.fakes.transitions[-1].settlement
    assert (settlement.customer_amount, settlement.provider_amount) == (50_000_000, 50_000_000)


async def test_emergency_cancel_needs_escrowed_money_then_refunds_in_full(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    request = EmergencyCancelRequest(operator="ops@bookme", reason="fraud report")
    kind, _ = await _rejected(handle, BookingWorkflow.emergency_cancel, request)
    assert kind == "WrongState"
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    result = await handle.execute_update(BookingWorkflow.emergency_cancel, request)
    assert result.status is S.PENDING_CANCELLATION
    again = await handle.execute_update(BookingWorkflow.emergency_cancel, request)
    assert again.tx_hash == result.tx_hash
    assert len(harness.fakes.refunds_sent) == 1
    # a cancellation request now would race the refund
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.PROVIDER, wallet=PROVIDER, reason="x"),
    )
    assert kind == "WrongState"
    await handle.signal(
        BookingWorkflow.booking_cancelled,
        cancellation_event(booking, by=OPERATOR, tx=result.tx_hash),
    )
    final = await handle.result()
    assert final.status is S.CANCELLED
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "emergency_cancel_sent",
        "booking_cancelled",
    ]
