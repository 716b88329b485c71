"""What is due when, and monitoring windows: pure functions of the booking's state and time."""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows import constants as c
from workflows.booking.state import BookingState, Window
from workflows.types import BookingPolicy, BookingStatus, ChainObservation, TransactionKind

S = BookingStatus
MAX_BACKOFF = timedelta(hours=1)


def auto_complete_due_at(state: BookingState) -> datetime | None:
    """Also in PENDING_COMPLETION: the operator's completion that never landed must not block
    the release (the sender reads the chain first, so it cannot double up)."""
    auto = state.auto_complete
    if (
        state.status in (S.PAID, S.PENDING_COMPLETION)
        and not auto.sent
        and not state.refund.sent
        and auto.attempts < c.MAX_AUTO_COMPLETE_ATTEMPTS
    ):
        return auto.at
    return None


def chain_passed(observation: ChainObservation, expiry: datetime) -> bool:
    """Whether no block to come can accept an authorization expiring at `expiry`.

    The contract accepts one while ``block.timestamp <= expiry``, and block time can lag ours
    (a sequencer behind, blocks re-mined by a reorg with their old timestamps): our clock
    passing the expiry proves nothing. The newest confirmed block having passed it does, since
    later blocks carry later timestamps and nothing under it is replaced. A history recorded
    before the chain's clock was read has no timestamp: its decision stays as it was made.
    """
    seen = observation.final_block_timestamp
    return seen is None or seen > int(expiry.timestamp())


def next_due(state: BookingState) -> datetime | None:
    candidates: list[datetime] = []
    if state.window is not None:
        candidates.append(state.window.next_poll_at)
    if state.status is S.PENDING_PAYMENT:
        candidates.append(state.payment_deadline)
    if state.status is S.PENDING_CANCELLATION and state.cancellation.check_at is not None:
        candidates.append(state.cancellation.check_at)
    auto_complete = auto_complete_due_at(state)
    if auto_complete is not None:
        candidates.append(auto_complete)
    if state.close_check_at is not None:
        candidates.append(state.close_check_at)
    if state.final_at is not None:
        candidates.append(state.final_at)
    return min(candidates) if candidates else None


def finished(state: BookingState) -> bool:
    if state.close_check_at is not None or state.final_at is not None:
        return False
    if state.status in (S.COMPLETED, S.CANCELLED):
        return True
    return state.status is S.FAILED and not state.refund.outstanding


def open_window(
    state: BookingState,
    policy: BookingPolicy,
    purpose: TransactionKind,
    tx_hash: str | None,
    now: datetime,
) -> Window:
    """Open a window, or widen the open one: push-only for the grace period, then polling."""
    until = now + timedelta(seconds=policy.monitoring_window_seconds)
    first_poll = now + timedelta(seconds=policy.push_grace_seconds)
    window = state.window
    if window is None:
        window = Window(purpose=purpose, tx_hash=tx_hash, until=until, next_poll_at=first_poll)
    else:
        window.purpose = purpose
        window.tx_hash = tx_hash or window.tx_hash
        window.until = max(window.until, until)
        window.next_poll_at = min(window.next_poll_at, first_poll)
    state.window = window
    return window


def postpone(state: BookingState, policy: BookingPolicy, now: datetime) -> datetime:
    """Next attempt after an inconclusive final check: poll interval, doubling, capped."""
    step = timedelta(seconds=policy.poll_interval_seconds) * (1 << state.backoff_steps)
    state.backoff_steps = min(state.backoff_steps + 1, 16)
    return now + min(step, MAX_BACKOFF)
