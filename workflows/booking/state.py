"""What one booking workflow remembers, grouped by concern, and the view a query returns.

Plain dataclasses with no behaviour beyond bookkeeping: the guards and the timers read them,
the workflow shell and the event applier change them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workflows import constants as c
from workflows.types import (
    BookingInput,
    BookingStatus,
    BookingView,
    CancellationAuthorization,
    CancellationSplit,
    ChainEventSignal,
    PaymentAuthorization,
    TransactionKind,
)


@dataclass(kw_only=True)
class Window:
    """An open monitoring window: push-only until ``next_poll_at``, then polling until ``until``."""

    purpose: TransactionKind
    tx_hash: str | None
    until: datetime
    next_poll_at: datetime
    found: bool = False


@dataclass(kw_only=True)
class PaymentAuthState:
    current: PaymentAuthorization | None = None
    issued: int = 0
    # The customer asked to cancel while ``current`` was still valid: the booking closes when
    # it expires (the payment deadline is moved there) and no new authorization is issued.
    unpaid_cancel_reason: str | None = None


@dataclass(kw_only=True)
class CancellationState:
    current: CancellationAuthorization | None = None
    splits: list[CancellationSplit] = field(default_factory=list)  # every split ever signed
    issued_by: dict[str, int] = field(default_factory=dict)  # per requesting role
    check_at: datetime | None = None  # when an unused authorization is known to have expired


@dataclass(kw_only=True)
class AutoCompleteState:
    at: datetime | None
    attempts: int = 0
    sent: bool = False
    completion_tx: str | None = None


@dataclass(kw_only=True)
class RefundState:
    sent: bool = False
    tx: str | None = None  # None with ``sent``: the chain was already final, nothing was sent
    outstanding: bool = False  # FAILED with escrowed money still owed to the customer


@dataclass(kw_only=True)
class Budgets:
    """Per party (customer/provider). Operators have no budget."""

    changes: dict[str, int] = field(default_factory=dict)  # updates that changed something
    repeats: dict[str, int] = field(default_factory=dict)  # repeats that changed nothing
    reports: dict[str, int] = field(default_factory=dict)  # reported transactions


@dataclass(kw_only=True)
class BookingState:
    status: BookingStatus = BookingStatus.PENDING_PAYMENT
    reason: str | None = None
    recorded: bool = False  # updates wait for the booking row their activities refer to
    applied: dict[str, ChainEventSignal] = field(default_factory=dict)
    buffered: list[ChainEventSignal] = field(default_factory=list)  # settlements before payment
    rejected: int = 0
    seq: int = 0  # transitions written (their dedupe keys)
    payment: PaymentAuthState = field(default_factory=PaymentAuthState)
    cancellation: CancellationState = field(default_factory=CancellationState)
    auto_complete: AutoCompleteState
    refund: RefundState = field(default_factory=RefundState)
    budgets: Budgets = field(default_factory=Budgets)
    window: Window | None = None
    release_at: datetime
    payment_deadline: datetime
    close_check_at: datetime | None = None  # after an unpaid cancellation, until auths expire
    final_at: datetime | None = None  # settled: still listening for reorgs until then
    backoff_steps: int = 0
    updated_at: datetime

    @classmethod
    def new(cls, booking: BookingInput, now: datetime) -> BookingState:
        policy = booking.policy
        release_at = booking.scheduled_at + timedelta(seconds=policy.auto_complete_delay_seconds)
        return cls(
            auto_complete=AutoCompleteState(at=release_at + c.BLOCK_TIME_MARGIN),
            release_at=release_at,
            payment_deadline=now + timedelta(seconds=policy.payment_deadline_seconds),
            updated_at=now,
        )

    def to_view(self, booking: BookingInput) -> BookingView:
        return BookingView(
            booking_id=booking.booking_id,
            chain_booking_id=booking.chain_booking_id,
            status=self.status,
            reason=self.reason,
            amount_units=booking.amount_units,
            customer_wallet=booking.customer_wallet,
            provider_wallet=booking.provider_wallet,
            inviter_wallet=booking.inviter_wallet,
            scheduled_at=booking.scheduled_at,
            release_at=self.release_at,
            payment_deadline=self.payment_deadline,
            payment_authorization=self.payment.current,
            cancellation_authorization=self.cancellation.current,
            refund_tx_hash=self.refund.tx,
            completion_tx_hash=self.auto_complete.completion_tx,
            monitoring_until=self.window.until if self.window else None,
            monitored_tx_hash=self.window.tx_hash if self.window else None,
            applied_event_keys=list(self.applied),
            pending_event_keys=[e.key for e in self.buffered],
            rejected_events=self.rejected,
            transitions=self.seq,
            updated_at=self.updated_at,
        )
