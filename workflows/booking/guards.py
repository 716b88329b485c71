"""Who may make which update in which state: pure functions of state, request and time.

Each ``check_*`` returns nothing or raises a ``BookingRequestRejected``; the workflow runs it
in the update's validator (refusals leave no trace in the history) and again in the handler
(the state may have moved while the update waited for the lock). Budgets are per party, so
no party can spend another's, and operators have none.
"""

from __future__ import annotations

import re
from datetime import datetime

from workflows import constants as c
from workflows.booking.state import BookingState
from workflows.errors import InvalidRequest, LimitReached, WrongCaller, WrongState
from workflows.event_checks import same_wallet
from workflows.types import (
    MONEY_HELD_STATUSES,
    AuthorizePaymentRequest,
    BookingInput,
    BookingStatus,
    CancellationAuthorization,
    CancellationRequest,
    EmergencyCancelRequest,
    PartyRole,
    PaymentAuthorization,
    ReportTransactionRequest,
    TransactionKind,
)

S = BookingStatus
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
MAX_REASON_LENGTH = 200
MONEY_HELD = MONEY_HELD_STATUSES
# Which statuses a reported transaction of each kind makes sense in.
REPORTABLE = {
    TransactionKind.PAYMENT: frozenset({S.PENDING_PAYMENT}),
    TransactionKind.COMPLETION: frozenset({S.PAID, S.PENDING_COMPLETION, S.PENDING_CANCELLATION}),
    TransactionKind.CANCELLATION: frozenset({S.PAID, S.PENDING_CANCELLATION}),
}


def party_wallet(booking: BookingInput, role: PartyRole) -> str | None:
    """The wallet a party acts with on this booking (operators act by name, not wallet)."""
    if role is PartyRole.CUSTOMER:
        return booking.customer_wallet
    if role is PartyRole.PROVIDER:
        return booking.provider_wallet
    return None


# --- budgets ---------------------------------------------------------------------------------


def check_budget(state: BookingState, role: PartyRole, *, changes: bool) -> None:
    """Repeats that change nothing (a reused authorization, an applied transaction) do not
    spend the budget for changes, but have a larger one of their own: they still add history.
    """
    if role is PartyRole.OPERATOR:
        return
    party = role.value
    budgets = state.budgets
    if changes and budgets.changes.get(party, 0) >= c.MAX_ACCEPTED_UPDATES:
        raise LimitReached(f"this booking has accepted its maximum of requests from the {party}")
    if not changes and budgets.repeats.get(party, 0) >= c.MAX_REPEATED_UPDATES:
        raise LimitReached(f"this booking has answered its maximum of repeats from the {party}")


def spend(state: BookingState, role: PartyRole, *, changed: bool) -> None:
    if role is PartyRole.OPERATOR:
        return
    counts = state.budgets.changes if changed else state.budgets.repeats
    counts[role.value] = counts.get(role.value, 0) + 1


# --- payment authorization -------------------------------------------------------------------


def reusable_payment_auth(state: BookingState, now: datetime) -> PaymentAuthorization | None:
    auth = state.payment.current
    if auth is not None and auth.expires_at - now >= c.MIN_REUSABLE_AUTHORIZATION:
        return auth
    return None


def live_payment_auth_until(state: BookingState, now: datetime) -> datetime | None:
    """When the last payment authorization stops being usable on chain, if it still is."""
    auth = state.payment.current
    if auth is None or auth.expires_at <= now:
        return None
    return auth.expires_at + c.BLOCK_TIME_MARGIN


def check_authorize(
    state: BookingState, booking: BookingInput, request: AuthorizePaymentRequest, now: datetime
) -> None:
    if not same_wallet(request.caller_wallet, booking.customer_wallet):
        raise WrongCaller("only the booking's customer can ask for a payment authorization")
    if state.status is not S.PENDING_PAYMENT:
        raise WrongState(f"booking is {state.status.value}, not PENDING_PAYMENT")
    if state.payment.unpaid_cancel_reason is not None:
        raise WrongState("the customer asked to cancel this booking; it cannot be paid")
    if now >= state.payment_deadline:
        raise WrongState("the payment deadline has passed")
    if (
        reusable_payment_auth(state, now) is None
        and state.payment.issued >= c.MAX_PAYMENT_AUTHORIZATIONS
    ):
        raise LimitReached("this booking has issued its maximum of payment authorizations")


# --- reported transactions -------------------------------------------------------------------


def reporter(request: ReportTransactionRequest) -> PartyRole:
    """The party whose budget a report spends (operators: none)."""
    return request.role or PartyRole.CUSTOMER  # None only in old recorded histories


def tx_already_applied(state: BookingState, tx_hash: str) -> bool:
    wanted = tx_hash.lower()
    return any(e.identity.tx_hash.lower() == wanted for e in state.applied.values())


def check_report(
    state: BookingState,
    booking: BookingInput,
    request: ReportTransactionRequest,
    now: datetime,
    *,
    caller: bool,
) -> None:
    """``caller=False`` only replays histories recorded before reports named their sender."""
    if not TX_HASH.match(request.tx_hash):
        raise InvalidRequest("tx_hash must be 0x followed by 64 hex digits")
    allowed = REPORTABLE.get(request.kind)
    if allowed is None:
        raise InvalidRequest(f"a {request.kind.value} transaction cannot be reported")
    if caller:
        check_reporter(state, booking, request, now)
    if tx_already_applied(state, request.tx_hash):
        return
    party = reporter(request).value
    if (
        request.role is not PartyRole.OPERATOR
        and state.budgets.reports.get(party, 0) >= c.MAX_REPORTED_TRANSACTIONS
    ):
        raise LimitReached(f"this booking has accepted its maximum of reports from the {party}")
    if state.status not in allowed:
        raise WrongState(
            f"a {request.kind.value} transaction does not fit a {state.status.value} booking"
        )


def check_reporter(
    state: BookingState, booking: BookingInput, request: ReportTransactionRequest, now: datetime
) -> None:
    """Only the party who can send a transaction of that kind on chain may report one."""
    role = request.role
    if role is None:
        raise WrongCaller("a report must say who sends it")
    if role is PartyRole.OPERATOR:
        if not request.wallet.strip():
            raise WrongCaller("an operator report must name the operator")
        return
    if not same_wallet(request.wallet, party_wallet(booking, role) or ""):
        raise WrongCaller(f"the caller is not this booking's {role.value}")
    kind = request.kind
    if kind is TransactionKind.PAYMENT and role is not PartyRole.CUSTOMER:
        raise WrongCaller("only the customer pays, so only the customer reports a payment")
    if (
        kind is TransactionKind.COMPLETION
        and role is not PartyRole.CUSTOMER
        and now < state.release_at
    ):
        raise WrongCaller(
            "before the release time only the customer can complete, so only the customer "
            "reports a completion"
        )


# --- cancellation ----------------------------------------------------------------------------


def reusable_cancel_auth(
    state: BookingState, role: PartyRole, now: datetime
) -> CancellationAuthorization | None:
    auth = state.cancellation.current
    if (
        auth is not None
        and state.status is S.PENDING_CANCELLATION
        and auth.requested_by is role
        and auth.expires_at - now >= c.MIN_REUSABLE_AUTHORIZATION
    ):
        return auth
    return None


def cancellation_changes(state: BookingState, request: CancellationRequest, now: datetime) -> bool:
    """Whether the request would change anything (else it is a repeat)."""
    if state.status is S.PENDING_PAYMENT:
        return state.payment.unpaid_cancel_reason is None
    return reusable_cancel_auth(state, request.role, now) is None


def check_cancellation(
    state: BookingState, booking: BookingInput, request: CancellationRequest, now: datetime
) -> None:
    check_reason(request.reason)
    wallet = party_wallet(booking, request.role)
    if wallet is not None and not same_wallet(request.wallet, wallet):
        raise WrongCaller(f"the caller is not this booking's {request.role.value}")
    if wallet is None and not request.wallet.strip():
        raise WrongCaller("an operator cancellation must name the operator")
    if state.status is S.PENDING_PAYMENT:
        return
    if state.status not in (S.PAID, S.PENDING_CANCELLATION) or state.refund.sent:
        raise WrongState(f"a {state.status.value} booking cannot be cancelled now")
    if (
        reusable_cancel_auth(state, request.role, now) is None
        and state.cancellation.issued_by.get(request.role.value, 0)
        >= c.MAX_CANCELLATION_AUTHORIZATIONS
    ):
        raise LimitReached(
            f"this booking has issued its maximum of cancellation authorizations "
            f"to the {request.role.value}"
        )


# --- operators -------------------------------------------------------------------------------


def check_reason(reason: str) -> None:
    if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise InvalidRequest(f"reason must be 1..{MAX_REASON_LENGTH} characters")


def check_operator(operator: str, reason: str) -> None:
    if not operator.strip():
        raise WrongCaller("an operator request must name the operator")
    check_reason(reason)


def check_emergency(state: BookingState, request: EmergencyCancelRequest) -> None:
    """Never refused by a budget: operators can always refund escrowed money."""
    if not request.operator.strip():
        raise WrongCaller("an emergency cancellation must name the operator")
    check_reason(request.reason)
    if state.refund.sent:
        return
    if state.status in MONEY_HELD:
        return
    if state.status is S.FAILED and state.refund.outstanding:
        return
    raise WrongState(f"a {state.status.value} booking holds no escrowed money to refund")


def check_redrive(state: BookingState, operator: str, reason: str) -> None:
    check_operator(operator, reason)
    if state.status is not S.FAILED:
        raise WrongState(f"only a FAILED booking is re-driven, this one is {state.status.value}")
