"""A relayed payment (issue #19): the customer's ERC-3009 signature, sent by the operator.

The ``relay_payment`` update lives on ``RelayedPaymentUpdates``, a base class of
``BookingWorkflow``: the booking's guards, then the ``relay_payment`` activity (the operator's
sender, one ledger intent per booking, a simulation before any gas is spent), then a monitoring
window on the relay's transaction, exactly as a reported payment opens one. The status moves
when the chain's ``BookingCreatedAndPaid`` arrives, as for a payment the customer sends.

A booking is relayed at most once: the first relay's answer is kept and every later request
gets it again (``replayed``). The ledger intent and the contract's nonces make the same true
across worker crashes and activity retries: a retried activity resumes the recorded
transaction, and the chain refuses a second payment of one booking authorization.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import constants as c
from workflows.booking import guards
from workflows.booking.state import BookingState, Window
from workflows.errors import InvalidRequest, RelayRefused, WrongCaller, WrongState
from workflows.event_checks import same_wallet
from workflows.types import (
    BookingInput,
    BookingStatus,
    PartyRole,
    PaymentAuthorization,
    TransactionKind,
)
from workflows.types.relay import RelayedPayment, RelayPaymentRequest, RelayTxRequest, RelayTxResult

SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
UINT256_MAX = 2**256 - 1
CUSTOMER = PartyRole.CUSTOMER


def check_caller(booking: BookingInput, request: RelayPaymentRequest) -> None:
    if not same_wallet(request.caller_wallet, booking.customer_wallet):
        raise WrongCaller("only the booking's customer can pay it")


def check_relay(
    state: BookingState, booking: BookingInput, request: RelayPaymentRequest, now: datetime
) -> PaymentAuthorization:
    """The payment authorization the transfer pays, if the booking may be relayed now."""
    check_caller(booking, request)
    if not SIGNATURE.match(request.signature):
        raise InvalidRequest("signature must be 0x followed by 130 hex digits (65 bytes)")
    for name, value in (
        ("valid_after", request.valid_after),
        ("valid_before", request.valid_before),
    ):
        if not 0 <= value <= UINT256_MAX:
            raise InvalidRequest(f"{name} must be an integer in [0, 2**256)")
    if request.valid_after >= request.valid_before:
        raise InvalidRequest("valid_after must be before valid_before")
    if state.status is not BookingStatus.PENDING_PAYMENT:
        raise WrongState(f"booking is {state.status.value}, not PENDING_PAYMENT")
    if state.payment.unpaid_cancel_reason is not None:
        raise WrongState("the customer asked to cancel this booking; it cannot be paid")
    if now >= state.payment_deadline:
        raise WrongState("the payment deadline has passed")
    auth = state.payment.current
    if auth is None or auth.expires_at <= now:
        raise WrongState("no live payment authorization: ask for one (relayed) and sign again")
    guards.check_budget(state, CUSTOMER, changes=True)
    return auth


async def send(
    booking: BookingInput, auth: PaymentAuthorization, request: RelayPaymentRequest
) -> RelayTxResult:
    """Run the relay activity; its refusals come back as the update's ``RelayRefused``."""
    try:
        result: RelayTxResult = await workflow.execute_activity(
            c.RELAY_PAYMENT,
            RelayTxRequest(
                booking_id=booking.booking_id,
                authorization=auth,
                signature=request.signature,
                valid_after=request.valid_after,
                valid_before=request.valid_before,
            ),
            result_type=RelayTxResult,
            start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
            heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
            retry_policy=c.RELAY_RETRY,
        )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == c.RELAY_REFUSED:
            code = str(cause.details[0]) if cause.details else "relay_refused"
            raise RelayRefused(cause.message, code) from None
        raise
    return result


class RelayedPaymentUpdates:
    """The ``relay_payment`` update, a base class of ``BookingWorkflow`` (which sets the fields)."""

    _booking: BookingInput
    _state: BookingState
    _lock: asyncio.Lock
    _relayed: RelayedPayment | None = None

    def open_window(self, purpose: TransactionKind, tx_hash: str | None) -> Window:
        raise NotImplementedError  # BookingWorkflow's

    @workflow.update(name="relay_payment")
    async def relay_payment(self, request: RelayPaymentRequest) -> RelayedPayment:
        """Pay the booking with the customer's transfer signature; the operator pays the gas."""
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            check_caller(self._booking, request)
            if self._relayed is not None:
                guards.spend(state, CUSTOMER, changed=False)
                return replace(self._relayed, replayed=True)
            auth = check_relay(state, self._booking, request, workflow.now())
            guards.spend(state, CUSTOMER, changed=True)
            sent = await send(self._booking, auth, request)
            window = self.open_window(TransactionKind.PAYMENT, sent.tx_hash)
            self._relayed = RelayedPayment(
                tx_hash=sent.tx_hash,
                monitoring_until=window.until,
                gas_used=sent.gas_used,
                gas_cost_wei=sent.gas_cost_wei,
            )
            return self._relayed

    @relay_payment.validator
    def _validate_relay_payment(self, request: RelayPaymentRequest) -> None:
        check_caller(self._booking, request)
        if self._relayed is not None:
            guards.check_budget(self._state, CUSTOMER, changes=False)
            return
        check_relay(self._state, self._booking, request, workflow.now())
