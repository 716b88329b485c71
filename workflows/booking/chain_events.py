"""Applying chain events to a booking: exactly once, in booking order, reorgs included.

The rules live here; the I/O (persisting a transition, sending a refund, windows and timers)
goes through ``Effects``, which the workflow shell implements. Pushed (listener) and polled
(observe activity) events take the same path, so whichever arrives first wins and the other
is a no-op by event identity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from chain.reason_codes import OnChainReason
from workflows import constants as c
from workflows.audit import AuditAction as A
from workflows.booking import versions
from workflows.booking.guards import MAX_REASON_LENGTH, MONEY_HELD
from workflows.booking.state import BookingState, Window
from workflows.event_checks import foreign_reason, mismatch_reason, settlement_legs
from workflows.types import (
    BookingInput,
    BookingStatus,
    ChainEventKind,
    ChainEventSignal,
    EventOutcome,
    RowTransaction,
    Settlement,
    TransactionKind,
)

S = BookingStatus


class Effects(Protocol):
    """What applying an event may do besides changing the state."""

    async def transition(
        self,
        to: BookingStatus,
        action: A,
        reason: str | None = None,
        *,
        event: ChainEventSignal | None = None,
        settlement: Settlement | None = None,
        tx_hash: str | None = None,
        sent: RowTransaction | None = None,
        event_outcome: EventOutcome | None = EventOutcome.PROCESSED,
    ) -> None: ...

    async def send_refund(self, reason: OnChainReason) -> str | None: ...

    def open_window(self, purpose: TransactionKind, tx_hash: str | None) -> Window: ...

    def close_window(self) -> None: ...

    def bump_timers(self) -> None: ...

    def publish_details(self) -> None: ...


class ChainEventApplier:
    def __init__(self, booking: BookingInput, state: BookingState, effects: Effects) -> None:
        self._booking = booking
        self._s = state
        self._fx = effects

    async def accept(self, event: ChainEventSignal, *, source: str) -> None:
        """Apply one chain event (pushed or polled) exactly once, in booking order."""
        key = event.key
        if key in self._s.applied or any(e.key == key for e in self._s.buffered):
            return
        foreign = foreign_reason(self._booking, event)
        if foreign is not None:
            await self._reject(event, foreign, foreign=True)
            return
        mismatch = mismatch_reason(self._booking, event, self._s.cancellation.splits)
        workflow.logger.info(
            "chain event", extra={"kind": event.kind.value, "key": key, "source": source}
        )
        if event.kind is ChainEventKind.PAYMENT:
            await self._accept_payment(event, mismatch)
        else:
            await self._accept_settlement(event, mismatch)
        self._fx.bump_timers()

    async def _accept_payment(self, event: ChainEventSignal, mismatch: str | None) -> None:
        paid_already = any(e.kind is ChainEventKind.PAYMENT for e in self._s.applied.values())
        if mismatch is not None and not paid_already:
            await self._escalate(event, mismatch)
            return
        if self._s.status is S.PENDING_PAYMENT:
            self._s.applied[event.key] = event
            # A payment that beat a deferred cancellation wins: the booking is paid, and the
            # customer can cancel it under the cancellation policy like any paid booking.
            self._s.payment.unpaid_cancel_reason = None
            await self._fx.transition(S.PAID, A.PAYMENT_CONFIRMED, event=event)
            self._fx.close_window()
            self._s.cancellation.check_at = None
            await self._drain_buffer()
        elif self._s.status is S.CANCELLED or (self._s.status is S.FAILED and not paid_already):
            await self._escalate(event, "payment arrived after the booking was closed")
        else:
            await self._reject(event, f"a second payment event while {self._s.status.value}")

    async def _accept_settlement(self, event: ChainEventSignal, mismatch: str | None) -> None:
        if self._s.status is S.PENDING_PAYMENT:
            # Completion or cancellation before we saw the payment: hold it until we do.
            self._s.buffered.append(event)
            return
        customer, provider, platform, inviter = settlement_legs(event)
        settlement = Settlement(
            kind=event.kind,
            customer_amount=customer,
            provider_amount=provider,
            platform_amount=platform,
            inviter_amount=inviter,
            emergency=self._s.refund.sent and event.kind is ChainEventKind.CANCELLATION,
        )
        completed = event.kind is ChainEventKind.COMPLETION
        if self._s.status in MONEY_HELD:
            self._s.applied[event.key] = event
            if mismatch is not None:
                # The money already moved (the chain is the truth): record it and escalate.
                await self._fx.transition(
                    S.FAILED,
                    A.CONTRADICTION,
                    mismatch,
                    event=event,
                    settlement=settlement,
                    event_outcome=EventOutcome.FAILED,
                )
            elif completed:
                await self._fx.transition(
                    S.COMPLETED, A.SERVICE_COMPLETED, event=event, settlement=settlement
                )
            else:
                await self._fx.transition(
                    S.CANCELLED, A.BOOKING_CANCELLED, event=event, settlement=settlement
                )
            self._fx.close_window()
            self.watch_finality()
        elif self._s.status is S.FAILED and self._s.refund.outstanding:
            self._s.applied[event.key] = event
            self._s.refund.outstanding = False
            action = A.COMPLETED_WHILE_FAILED if completed else A.REFUND_RECORDED
            await self._fx.transition(
                S.FAILED, action, mismatch, event=event, settlement=settlement
            )
            self._fx.close_window()
            self.watch_finality()
        else:
            await self._reject(event, f"a {event.kind.value} event while {self._s.status.value}")

    async def _drain_buffer(self) -> None:
        held = sorted(
            self._s.buffered, key=lambda e: (e.identity.block_number, e.identity.log_index)
        )
        self._s.buffered.clear()
        for event in held:
            await self.accept(event, source="buffer")

    async def revert(self, event: ChainEventSignal) -> None:
        """A reorg removed an event: forget it and roll the booking back if it moved us."""
        key = event.key
        held = [e for e in self._s.buffered if e.key == key]
        if held:
            self._s.buffered.remove(held[0])
            return
        applied = self._s.applied.pop(key, None)
        if applied is None:
            await self._reject(event, "revert of an event this booking never applied")
            return
        if (
            applied.kind is not ChainEventKind.PAYMENT
            and self._s.status in (S.COMPLETED, S.CANCELLED, S.FAILED)
            and versions.applies(c.PATCH_SETTLEMENT_FINALITY)
        ):
            await self._settlement_reorged(event, applied)
            return
        if applied.kind is ChainEventKind.PAYMENT and self._s.status in MONEY_HELD:
            now = workflow.now()
            self._s.payment_deadline = max(
                self._s.payment_deadline,
                now + timedelta(seconds=self._booking.policy.monitoring_window_seconds),
            )
            self._s.cancellation.current = None
            self._s.cancellation.check_at = None
            self._s.auto_complete.completion_tx = None
            self._s.auto_complete.attempts = 0
            self._s.auto_complete.sent = False
            await self._fx.transition(
                S.PENDING_PAYMENT,
                A.PAYMENT_REORGED,
                "payment removed by a reorg",
                event=event,
                event_outcome=EventOutcome.REORGED,
            )
            self._fx.open_window(TransactionKind.PAYMENT, event.identity.tx_hash)
        else:
            await self._fx.transition(
                self._s.status,
                A.EVENT_REVERTED,
                f"{applied.kind.value} removed by a reorg after it was applied",
                event=event,
                event_outcome=EventOutcome.REORGED,
            )

    async def _settlement_reorged(self, event: ChainEventSignal, applied: ChainEventSignal) -> None:
        """A reorg removed the completion or cancellation: the money is back in escrow.

        The booking goes back to what the chain shows, so the same transaction re-included
        (the usual case) is applied again, and a dropped one is retried or replaced.
        """
        self._s.final_at = None
        now = workflow.now()
        emergency = self._s.refund.sent and applied.kind is ChainEventKind.CANCELLATION
        if applied.kind is ChainEventKind.COMPLETION:
            self._s.auto_complete.completion_tx = None
            self._s.auto_complete.sent = False
            self._s.auto_complete.attempts = 0
            # Give the re-inclusion a window before sending a completion of our own.
            self._s.auto_complete.at = max(
                self._s.release_at + c.BLOCK_TIME_MARGIN,
                now + timedelta(seconds=self._booking.policy.monitoring_window_seconds),
            )
        else:
            self._s.cancellation.current = None
            self._s.cancellation.check_at = None
        if self._s.status is S.FAILED:
            target = S.FAILED
            self._s.refund.outstanding = True
        else:
            target = S.PENDING_CANCELLATION if emergency else S.PAID
        await self._fx.transition(
            target,
            A.SETTLEMENT_REORGED,
            f"{applied.kind.value} removed by a reorg; the money is back in escrow",
            event=event,
            event_outcome=EventOutcome.REORGED,
        )
        if target is S.PAID:
            completion = applied.kind is ChainEventKind.COMPLETION
            purpose = TransactionKind.COMPLETION if completion else TransactionKind.CANCELLATION
            self._fx.open_window(purpose, event.identity.tx_hash)
            return
        # A refund we owe: send it again (the sender reads the chain first, so a refund that
        # came back with the reorg is not sent twice).
        self._s.refund.sent = False
        self._s.refund.tx = None
        try:
            await self._fx.send_refund(OnChainReason.REFUND_RESENT)
        except ActivityError as err:
            await self._fx.transition(target, A.REFUND_FAILED, str(err.cause)[:MAX_REASON_LENGTH])
            self._fx.open_window(TransactionKind.REFUND, None)

    def watch_finality(self) -> None:
        """Stay open after settling until a reorg can no longer remove the settlement."""
        seconds = self._booking.policy.settlement_finality_seconds
        if seconds > 0 and versions.applies(c.PATCH_SETTLEMENT_FINALITY):
            self._s.final_at = workflow.now() + timedelta(seconds=seconds)
            self._fx.publish_details()
            self._fx.bump_timers()

    async def _reject(self, event: ChainEventSignal, reason: str, *, foreign: bool = False) -> None:
        """Record an event this booking will not apply (a foreign one is not marked at all)."""
        self._s.rejected += 1
        workflow.logger.warning("chain event rejected", extra={"key": event.key, "reason": reason})
        if self._s.rejected <= c.MAX_REJECTED_EVENTS_RECORDED:
            await self._fx.transition(
                self._s.status,
                A.EVENT_REJECTED,
                reason,
                event=event,
                event_outcome=None if foreign else EventOutcome.FAILED,
            )

    async def _escalate(self, event: ChainEventSignal, reason: str) -> None:
        """Money is held for this booking in a way it did not allow: FAILED, then refund it."""
        self._s.applied[event.key] = event
        self._s.refund.outstanding = True
        self._s.close_check_at = None
        await self._fx.transition(
            S.FAILED, A.CONTRADICTION, reason, event=event, event_outcome=EventOutcome.FAILED
        )
        if self._s.refund.sent:
            return
        try:
            await self._fx.send_refund(OnChainReason.ESCALATED_REFUND)
        except ActivityError as err:
            # Often the chain already settled it; the window looks, an operator can resend.
            await self._fx.transition(S.FAILED, A.REFUND_FAILED, str(err.cause)[:MAX_REASON_LENGTH])
            self._fx.open_window(TransactionKind.REFUND, None)
