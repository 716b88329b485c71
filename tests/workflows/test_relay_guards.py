"""Who may have a booking's payment relayed, and when: pure functions, no server; and the one
rule that turns relaying off."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bookme.relay_settings import RelaySettings
from tests.workflows.fakes import CUSTOMER, ESCROW, PROVIDER, make_booking
from workflows import constants as c
from workflows.booking.relay import check_relay
from workflows.booking.state import BookingState
from workflows.errors import InvalidRequest, LimitReached, WrongCaller, WrongState
from workflows.types import BookingInput, BookingStatus, PaymentAuthorization
from workflows.types.relay import RelayPaymentRequest

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SIGNATURE = "0x" + "ab" * 65


def _payable() -> tuple[BookingInput, BookingState]:
    booking = make_booking(now=NOW)
    state = BookingState.new(booking, NOW)
    state.payment.current = PaymentAuthorization(
        chain_booking_id=booking.chain_booking_id,
        customer=booking.customer_wallet,
        provider=booking.provider_wallet,
        inviter=booking.inviter_or_zero,
        amount=booking.amount_units,
        platform_fee_rate=1000,
        inviter_fee_rate=0,
        release_time=int(state.release_at.timestamp()),
        expiry=int((NOW + timedelta(minutes=5)).timestamp()),
        nonce=1,
        signature=SIGNATURE,
        contract=ESCROW,
        chain_id=31337,
        expires_at=NOW + timedelta(minutes=5),
    )
    return booking, state


def _request(**overrides: Any) -> RelayPaymentRequest:
    return replace(
        RelayPaymentRequest(
            caller_wallet=CUSTOMER, signature=SIGNATURE, valid_after=0, valid_before=2**40
        ),
        **overrides,
    )


def test_the_customer_relays_the_live_authorization():
    booking, state = _payable()
    assert check_relay(state, booking, _request(), NOW) is state.payment.current


@pytest.mark.parametrize(
    ("request_overrides", "error"),
    [
        ({"caller_wallet": PROVIDER}, WrongCaller),
        ({"signature": "0x1234"}, InvalidRequest),
        ({"valid_after": 2**40, "valid_before": 2**40}, InvalidRequest),
        ({"valid_before": 2**256}, InvalidRequest),
    ],
)
def test_bad_requests_are_refused(request_overrides, error):
    booking, state = _payable()
    with pytest.raises(error):
        check_relay(state, booking, _request(**request_overrides), NOW)


def test_nothing_is_relayed_without_a_live_authorization_or_outside_pending_payment():
    booking, state = _payable()
    expired = state.payment.current
    assert expired is not None
    with pytest.raises(WrongState, match="no live payment authorization"):
        check_relay(state, booking, _request(), expired.expires_at)
    state.payment.current = None
    with pytest.raises(WrongState):
        check_relay(state, booking, _request(), NOW)
    booking, state = _payable()
    state.status = BookingStatus.CANCELLED
    with pytest.raises(WrongState, match="CANCELLED"):
        check_relay(state, booking, _request(), NOW)


def test_the_customers_budget_bounds_relay_attempts():
    booking, state = _payable()
    state.budgets.changes["customer"] = c.MAX_ACCEPTED_UPDATES
    with pytest.raises(LimitReached):
        check_relay(state, booking, _request(), NOW)


def test_relaying_is_off_when_switched_off_or_below_the_operator_floor():
    on = RelaySettings(_env_file=None, relay_min_operator_balance_wei=100)
    assert on.relay_off_reason(None) is None
    assert on.relay_off_reason(100) is None
    assert on.relay_off_reason(99) is not None
    off = on.model_copy(update={"relay_enabled": False})
    assert off.relay_off_reason(10**30) is not None
