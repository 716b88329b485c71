"""No party can steer a booking or block another (security review H1, H2, L6, poison input).

Each test plays the attack against the real workflow on the time-skipping server and checks
that the honest parties (and the operator) can still do everything the policy allows them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from chain.reason_codes import OnChainReason
from tests.workflows.fakes import (
    CUSTOMER,
    PROVIDER,
    cancellation_event,
    payment_event,
    tx_hash,
)
from workflows import BookingWorkflow
from workflows import constants as c
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
AS_CUSTOMER: dict[str, Any] = {"role": PartyRole.CUSTOMER, "wallet": CUSTOMER}
AS_PROVIDER: dict[str, Any] = {"role": PartyRole.PROVIDER, "wallet": PROVIDER}


async def _rejected(handle, update, request) -> tuple[str, str]:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, request)
    cause = info.value.cause
    return cause.type, cause.message  # type: ignore[attr-defined]


async def _paid(harness, **kwargs):
    booking = await harness.booking(**kwargs)
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    return booking, handle


def _cancel(role: dict[str, Any], reason: str = "cannot make it") -> CancellationRequest:
    return CancellationRequest(reason=reason, **role)


# --- H1: a fake completion report --------------------------------------------------------


async def test_provider_cannot_report_a_completion_before_the_release_time(harness):
    _booking, handle = await _paid(harness)
    kind, message = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.COMPLETION, **AS_PROVIDER),
    )
    assert kind == "WrongCaller"
    assert "only the customer" in message
    # Nor can anyone report without saying who they are, or as a party they are not.
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.COMPLETION),
    )
    assert kind == "WrongCaller"
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=tx_hash(),
            kind=TransactionKind.COMPLETION,
            role=PartyRole.CUSTOMER,
            wallet=PROVIDER,
        ),
    )
    assert kind == "WrongCaller"
    # The customer can still cancel: the booking is exactly as before.
    result = await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER))
    assert result.authorization is not None
    assert harness.fakes.actions() == ["payment_confirmed", "cancellation_authorized"]


async def test_a_completion_report_that_never_lands_leaves_the_booking_as_it_was(harness):
    _booking, handle = await _paid(harness)
    harness.fakes.tx_status = TxStatus.UNKNOWN  # the made-up hash is never seen on chain
    report = await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.COMPLETION, **AS_CUSTOMER),
    )
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PAID  # a report alone never moves the status
    assert view.monitoring_until == report.monitoring_until
    await harness.env.sleep(timedelta(minutes=4))  # the window ends without the event
    view = await handle.query(BookingWorkflow.status)
    assert view.status is S.PAID
    assert view.monitoring_until is None
    assert harness.fakes.actions() == ["payment_confirmed"]
    assert harness.fakes.completions_sent == []
    result = await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER))
    assert result.status is S.PENDING_CANCELLATION


async def test_provider_may_report_a_completion_once_anyone_can_complete(harness):
    _booking, handle = await _paid(harness, scheduled_in=timedelta(minutes=10))
    await harness.env.sleep(timedelta(hours=2, minutes=11))  # past the release time
    harness.fakes.complete_fails = True  # keep the auto-complete from settling it first
    report = await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.COMPLETION, **AS_PROVIDER),
    )
    assert report.kind is TransactionKind.COMPLETION


async def test_only_the_customer_reports_a_payment(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.PAYMENT, **AS_PROVIDER),
    )
    assert kind == "WrongCaller"


async def test_provider_reports_do_not_use_up_the_customers(harness):
    _booking, handle = await _paid(harness, scheduled_in=timedelta(minutes=10))
    await harness.env.sleep(timedelta(hours=2, minutes=11))
    harness.fakes.complete_fails = True
    for _ in range(c.MAX_REPORTED_TRANSACTIONS):
        await handle.execute_update(
            BookingWorkflow.report_transaction,
            ReportTransactionRequest(
                tx_hash=tx_hash(), kind=TransactionKind.COMPLETION, **AS_PROVIDER
            ),
        )
    kind, _ = await _rejected(
        handle,
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.COMPLETION, **AS_PROVIDER),
    )
    assert kind == "LimitReached"
    report = await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(tx_hash=tx_hash(), kind=TransactionKind.COMPLETION, **AS_CUSTOMER),
    )
    assert report.kind is TransactionKind.COMPLETION


# --- H2: the shared update budget --------------------------------------------------------


async def test_provider_repeats_cannot_lock_out_the_customer_or_the_operator(harness):
    _booking, handle = await _paid(harness)
    first = await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_PROVIDER))
    # The review's attack: 40 more requests that each return the same authorization (and,
    # past that, up to the bound repeats have of their own, since they still add history).
    for _ in range(c.MAX_REPEATED_UPDATES):
        again = await handle.execute_update(
            BookingWorkflow.request_cancellation, _cancel(AS_PROVIDER)
        )
        assert again.authorization == first.authorization
    kind, message = await _rejected(
        handle, BookingWorkflow.request_cancellation, _cancel(AS_PROVIDER)
    )
    assert kind == "LimitReached"
    assert "provider" in message
    # The provider spent its own budget only.
    customer = await handle.execute_update(
        BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER)
    )
    assert customer.authorization is not None
    assert customer.authorization.requested_by is PartyRole.CUSTOMER
    refund = await handle.execute_update(
        BookingWorkflow.emergency_cancel, EmergencyCancelRequest(operator="ops", reason="fraud")
    )
    assert refund.tx_hash is not None
    assert len(harness.fakes.refunds_sent) == 1


async def test_provider_cannot_use_up_the_customers_cancellation_authorizations(harness):
    _booking, handle = await _paid(harness)
    harness.fakes.onchain_status = OnChainStatus.PAID  # each authorization expires unused
    for _ in range(c.MAX_CANCELLATION_AUTHORIZATIONS):
        await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_PROVIDER))
        await harness.env.sleep(timedelta(minutes=6))  # expires unused; back to PAID
        await harness.wait_for(handle, S.PAID)
    kind, _ = await _rejected(handle, BookingWorkflow.request_cancellation, _cancel(AS_PROVIDER))
    assert kind == "LimitReached"
    result = await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER))
    assert result.authorization is not None


async def test_operator_emergency_refund_is_never_refused_by_a_budget(harness):
    _booking, handle = await _paid(harness)
    request = EmergencyCancelRequest(operator="ops", reason="fraud report")
    first = await handle.execute_update(BookingWorkflow.emergency_cancel, request)
    for _ in range(c.MAX_REPEATED_UPDATES + 5):
        again = await handle.execute_update(BookingWorkflow.emergency_cancel, request)
        assert again.tx_hash == first.tx_hash
    assert len(harness.fakes.refunds_sent) == 1


# --- M7: free text stays off chain -------------------------------------------------------


async def test_the_chain_gets_reason_codes_and_postgres_gets_the_words(harness):
    _booking, handle = await _paid(harness)
    await handle.execute_update(
        BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER, "my dentist, Dr. Smith")
    )
    signed = harness.fakes.cancellation_signings[-1]
    assert signed.reason == OnChainReason.CUSTOMER_CANCELLED
    await handle.execute_update(
        BookingWorkflow.emergency_cancel,
        EmergencyCancelRequest(operator="alice@bookme", reason="incident 42"),
    )
    assert harness.fakes.refunds_sent[-1].reason == OnChainReason.EMERGENCY_REFUND
    audit = [t.reason or "" for t in harness.fakes.transitions]
    assert any("Dr. Smith" in r for r in audit)
    assert any("alice@bookme" in r and "incident 42" in r for r in audit)


# --- L6: cancel, then pay with the authorization still in hand ---------------------------


async def test_cancelling_with_a_live_authorization_closes_once_it_expires(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    result = await handle.execute_update(
        BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER, "oops")
    )
    assert result.status is S.PENDING_PAYMENT
    assert result.cancels_at is not None
    assert result.cancels_at > auth.expires_at
    # No new authorization for a booking its customer asked to cancel.
    kind, _ = await _rejected(
        handle, BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    assert kind == "WrongState"
    final = await handle.result()  # the server skips time to the cancellation
    assert final.status is S.CANCELLED
    assert final.reason == "customer: oops"
    assert harness.fakes.actions() == ["cancellation_requested", "cancelled_unpaid"]
    assert harness.fakes.refunds_sent == []


async def test_a_payment_before_the_deferred_cancellation_is_paid_not_refunded(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER))
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    view = await harness.wait_for(handle, S.PAID)
    assert harness.fakes.refunds_sent == []  # no operator gas spent
    await harness.env.sleep(timedelta(minutes=10))  # past the old cancellation time
    assert (await handle.query(BookingWorkflow.status)).status is S.PAID
    # The customer cancels the paid booking like any other, and is refunded by the policy.
    result = await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER))
    assert result.authorization is not None
    await handle.signal(BookingWorkflow.booking_cancelled, cancellation_event(booking, by=CUSTOMER))
    final = await handle.result()
    assert final.status is S.CANCELLED
    assert view.payment_authorization is not None


async def test_cancelling_without_a_live_authorization_is_immediate(harness):
    booking = await harness.booking()
    handle = await harness.start(booking)
    result = await handle.execute_update(BookingWorkflow.request_cancellation, _cancel(AS_CUSTOMER))
    assert result.status is S.CANCELLED
    assert result.cancels_at is None


# --- poison input ------------------------------------------------------------------------


async def test_a_booking_postgres_refuses_ends_failed_with_the_reason(harness):
    harness.fakes.refuse_record = True
    booking = await harness.booking()
    handle = await harness.start(booking)
    final = await handle.result()
    assert final.status is S.FAILED
    assert final.reason is not None
    assert "could not be stored" in final.reason
    assert len(harness.fakes.records) == 1  # tried once, not forever
    described = await handle.describe()
    assert described.search_attributes.get("BookingStatus") == ["FAILED"]
