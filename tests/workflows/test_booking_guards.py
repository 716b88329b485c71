"""The booking's guards as pure functions: who may do what, in which state, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.workflows.fakes import CUSTOMER, PROVIDER, make_booking, tx_hash
from workflows import constants as c
from workflows.booking import guards
from workflows.booking.state import BookingState
from workflows.errors import InvalidRequest, LimitReached, WrongCaller, WrongState
from workflows.types import (
    AuthorizePaymentRequest,
    BookingStatus,
    CancellationRequest,
    EmergencyCancelRequest,
    PartyRole,
    ReportTransactionRequest,
    TransactionKind,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
S = BookingStatus


def _state(status: BookingStatus = S.PAID, **booking_kwargs: object):
    booking = make_booking(now=NOW, **booking_kwargs)  # type: ignore[arg-type]
    state = BookingState.new(booking, NOW)
    state.status = status
    return booking, state


def _report(kind: TransactionKind, role: PartyRole | None, wallet: str):
    return ReportTransactionRequest(tx_hash=tx_hash(), kind=kind, role=role, wallet=wallet)


def test_a_completion_report_before_the_release_time_is_the_customers_alone():
    booking, state = _state()
    provider = _report(TransactionKind.COMPLETION, PartyRole.PROVIDER, PROVIDER)
    with pytest.raises(WrongCaller):
        guards.check_report(state, booking, provider, NOW, caller=True)
    after_release = state.release_at + timedelta(seconds=1)
    guards.check_report(state, booking, provider, after_release, caller=True)
    customer = _report(TransactionKind.COMPLETION, PartyRole.CUSTOMER, CUSTOMER)
    guards.check_report(state, booking, customer, NOW, caller=True)


@pytest.mark.parametrize(
    ("role", "wallet"),
    [
        (None, CUSTOMER),  # nobody said who sends it
        (PartyRole.CUSTOMER, PROVIDER),  # a party posing as the other
        (PartyRole.PROVIDER, PROVIDER),  # only the customer pays
        (PartyRole.OPERATOR, " "),  # an operator must be named
    ],
)
def test_payment_reports_need_the_payer(role, wallet):
    booking, state = _state(S.PENDING_PAYMENT)
    with pytest.raises(WrongCaller):
        guards.check_report(
            state, booking, _report(TransactionKind.PAYMENT, role, wallet), NOW, caller=True
        )


def test_budgets_are_per_party_and_operators_have_none():
    _, state = _state()
    for _ in range(c.MAX_ACCEPTED_UPDATES):
        guards.spend(state, PartyRole.PROVIDER, changed=True)
    with pytest.raises(LimitReached, match="provider"):
        guards.check_budget(state, PartyRole.PROVIDER, changes=True)
    guards.check_budget(state, PartyRole.PROVIDER, changes=False)  # repeats: own bound
    guards.check_budget(state, PartyRole.CUSTOMER, changes=True)
    for _ in range(c.MAX_REPEATED_UPDATES * 2):
        guards.spend(state, PartyRole.OPERATOR, changed=True)
    guards.check_budget(state, PartyRole.OPERATOR, changes=True)
    assert PartyRole.OPERATOR.value not in state.budgets.changes


def test_cancellation_authorizations_are_capped_per_role():
    booking, state = _state()
    state.cancellation.issued_by[PartyRole.PROVIDER.value] = c.MAX_CANCELLATION_AUTHORIZATIONS
    provider = CancellationRequest(role=PartyRole.PROVIDER, wallet=PROVIDER, reason="x")
    with pytest.raises(LimitReached):
        guards.check_cancellation(state, booking, provider, NOW)
    customer = CancellationRequest(role=PartyRole.CUSTOMER, wallet=CUSTOMER, reason="x")
    guards.check_cancellation(state, booking, customer, NOW)


def test_an_unpaid_cancellation_request_blocks_new_payment_authorizations():
    booking, state = _state(S.PENDING_PAYMENT)
    state.payment.unpaid_cancel_reason = "customer: oops"
    with pytest.raises(WrongState, match="cancel"):
        guards.check_authorize(state, booking, AuthorizePaymentRequest(caller_wallet=CUSTOMER), NOW)


@pytest.mark.parametrize("status", [S.PAID, S.PENDING_COMPLETION, S.PENDING_CANCELLATION])
def test_an_emergency_refund_is_allowed_wherever_money_is_held(status):
    _, state = _state(status)
    state.budgets.changes = {"customer": 10**6, "provider": 10**6}
    guards.check_emergency(state, EmergencyCancelRequest(operator="ops", reason="fraud"))


def test_an_emergency_refund_needs_escrowed_money_and_a_reason():
    _, state = _state(S.PENDING_PAYMENT)
    with pytest.raises(WrongState):
        guards.check_emergency(state, EmergencyCancelRequest(operator="ops", reason="fraud"))
    _, paid = _state(S.PAID)
    with pytest.raises(InvalidRequest):
        guards.check_emergency(paid, EmergencyCancelRequest(operator="ops", reason=" "))
