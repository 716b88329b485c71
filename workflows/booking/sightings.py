"""Payments seen before their confirmations: what the booking shows, never what it holds.

The listener forwards a payment log as soon as a block carries it (``payment_seen``), again as
confirmations accumulate, and withdraws it if the block leaves the chain first. Each change
the customer should see is one audit row (so the event stream carries it) plus the view's
``payment_seen`` field. The status stays PENDING_PAYMENT and no money row is written: only the
confirmed ``payment_confirmed`` event moves the booking, by the rules in ``chain_events``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from temporalio import workflow

from workflows.audit import AuditAction as A
from workflows.booking.chain_events import Effects
from workflows.booking.state import BookingState
from workflows.event_checks import foreign_reason, mismatch_reason
from workflows.types import (
    BookingInput,
    BookingStatus,
    BookingView,
    ChainEventKind,
    PaymentSeen,
    PaymentSighting,
    seen_summary,
)

# Audit rows a booking writes for sightings: an honest payment needs confirmations + 1, a
# reorg or two a few more; past this the view still follows, the trail stays bounded.
MAX_SIGHTINGS_RECORDED = 32
CLEARED_REASON = "the payment's block left the chain before its confirmations"


class Verdict(StrEnum):
    SHOW = "show"  # new, or more confirmations than shown
    CLEAR = "clear"  # the shown payment's block left the chain
    IGNORE = "ignore"  # contradicts the booking: recorded with the reason, nothing shown
    NOTHING = "nothing"  # a duplicate, or the confirmed event already decided


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str | None = None


def same_inclusion(shown: PaymentSeen | None, sighting: PaymentSighting) -> bool:
    """Whether the sighting is of the very log shown (same transaction, index and block)."""
    identity = sighting.event.identity
    return (
        shown is not None
        and shown.tx_hash.lower() == identity.tx_hash.lower()
        and shown.log_index == identity.log_index
        and shown.block_hash.lower() == identity.block_hash.lower()
    )


def judge(
    booking: BookingInput, state: BookingState, shown: PaymentSeen | None, sighting: PaymentSighting
) -> Judgement:
    """What one sighting does to the booking's view (pure)."""
    event = sighting.event
    if event.kind is not ChainEventKind.PAYMENT:
        return Judgement(Verdict.IGNORE, f"sighting ignored: a {event.kind.value} event")
    foreign = foreign_reason(booking, event)
    if foreign is not None:
        return Judgement(Verdict.IGNORE, f"sighting ignored: {foreign}")
    if sighting.removed:
        return Judgement(Verdict.CLEAR if same_inclusion(shown, sighting) else Verdict.NOTHING)
    if state.status is not BookingStatus.PENDING_PAYMENT or event.key in state.applied:
        return Judgement(Verdict.NOTHING)
    mismatch = mismatch_reason(booking, event)
    if mismatch is not None:
        return Judgement(Verdict.IGNORE, f"sighting ignored: {mismatch}")
    if (
        shown is not None
        and same_inclusion(shown, sighting)
        and sighting.confirmations <= shown.confirmations
    ):
        return Judgement(Verdict.NOTHING)
    return Judgement(Verdict.SHOW)


class Sightings:
    """The booking's latest sighting and the audit rows that announce it."""

    def __init__(self, booking: BookingInput, state: BookingState, effects: Effects) -> None:
        self._booking = booking
        self._s = state
        self._fx = effects
        self.shown: PaymentSeen | None = None
        self._ignored: set[str] = set()
        self._recorded = 0

    async def apply(self, sighting: PaymentSighting) -> None:
        """Show, update, withdraw or refuse one sighting (the caller holds the state lock)."""
        judgement = judge(self._booking, self._s, self.shown, sighting)
        event = sighting.event
        tx_hash = event.identity.tx_hash
        if judgement.verdict is Verdict.NOTHING:
            return
        if judgement.verdict is Verdict.IGNORE:
            if event.key in self._ignored:
                return  # the same log again, one more confirmation deep
            self._ignored.add(event.key)
            workflow.logger.warning(
                "sighting ignored", extra={"key": event.key, "reason": judgement.reason}
            )
            await self._record(A.SIGHTING_IGNORED, judgement.reason, tx_hash)
            return
        if judgement.verdict is Verdict.CLEAR:
            if self._s.status is BookingStatus.PENDING_PAYMENT:
                await self._record(A.PAYMENT_SEEN_CLEARED, CLEARED_REASON, tx_hash)
            self.shown = None  # once paid the view no longer shows it: nothing to announce
            return
        required = self._booking.policy.confirmations
        identity = event.identity
        seen = PaymentSeen(
            tx_hash=tx_hash,
            log_index=identity.log_index,
            block_number=identity.block_number,
            block_hash=identity.block_hash,
            confirmations=sighting.confirmations,
            required=required,
            seen_at=workflow.now(),
        )
        await self._record(A.PAYMENT_SEEN, seen_summary(sighting.confirmations, required), tx_hash)
        self.shown = seen

    async def _record(self, action: A, reason: str | None, tx_hash: str) -> None:
        if self._recorded >= MAX_SIGHTINGS_RECORDED:
            return
        self._recorded += 1
        # Same status on both sides: an audit row for the stream, nothing else moves.
        await self._fx.transition(self._s.status, action, reason, tx_hash=tx_hash)

    def view(self, view: BookingView) -> BookingView:
        """``view`` with the sighting, while it still means something (unpaid, unconfirmed)."""
        shown = self.shown
        if shown is None or view.status is not BookingStatus.PENDING_PAYMENT:
            return view
        if any(
            e.identity.tx_hash.lower() == shown.tx_hash.lower() for e in self._s.applied.values()
        ):
            return view
        return dataclasses.replace(view, payment_seen=shown)
