"""The booking's clock and its eyes on the chain: deadlines, monitoring windows, polls, and the
operator's own transactions (auto-complete, refunds).

Every deadline reads the chain before acting on it (``final_check``): a payment mined
seconds before the deadline, or a cancellation that just landed, must win over the timer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from chain.reason_codes import OnChainReason
from workflows import constants as c
from workflows.audit import AuditAction as A
from workflows.booking import short_activities, timers
from workflows.booking.chain_events import ChainEventApplier, Effects
from workflows.booking.guards import MAX_REASON_LENGTH
from workflows.booking.state import BookingState, Window
from workflows.types import (
    BookingInput,
    BookingStatus,
    ChainObservation,
    ObserveRequest,
    OnChainStatus,
    OperatorTxRequest,
    OperatorTxResult,
    RowTransaction,
    TransactionKind,
    TxStatus,
)

S = BookingStatus


class Watch:
    def __init__(
        self,
        booking: BookingInput,
        state: BookingState,
        effects: Effects,
        events: ChainEventApplier,
    ) -> None:
        self._booking = booking
        self._s = state
        self._fx = effects
        self._events = events

    async def send_refund(self, reason: OnChainReason) -> str | None:
        """emergencyCancelBooking with a code as its on-chain reason (the words stay off chain)."""
        b, refund = self._booking, self._s.refund
        result: OperatorTxResult = await workflow.execute_activity(
            c.SEND_EMERGENCY_CANCEL,
            OperatorTxRequest(
                booking_id=b.booking_id, chain_booking_id=b.chain_booking_id, reason=reason.value
            ),
            result_type=OperatorTxResult,
            start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
            heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
            retry_policy=c.SEND_RETRY,
        )
        refund.sent = True
        refund.tx = result.tx_hash
        refund.outstanding = True
        self._fx.open_window(TransactionKind.REFUND, result.tx_hash)
        return result.tx_hash

    async def auto_complete(self) -> None:
        auto = self._s.auto_complete
        auto.attempts += 1
        b = self._booking
        try:
            result: OperatorTxResult = await workflow.execute_activity(
                c.SEND_COMPLETE_SERVICE,
                OperatorTxRequest(booking_id=b.booking_id, chain_booking_id=b.chain_booking_id),
                result_type=OperatorTxResult,
                start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
                heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
                retry_policy=c.SEND_RETRY,
            )
        except ActivityError as err:
            # Often the chain already moved (customer completed, booking cancelled): look.
            workflow.logger.warning("auto-complete failed", extra={"error": str(err.cause)})
            auto.at = workflow.now() + timedelta(
                seconds=self._booking.policy.monitoring_window_seconds
            )
            await self._fx.transition(
                self._s.status, A.AUTO_COMPLETE_FAILED, str(err.cause)[:MAX_REASON_LENGTH]
            )
            self._fx.open_window(TransactionKind.COMPLETION, None)
            return
        auto.sent = True
        auto.completion_tx = result.tx_hash
        await self._fx.transition(
            S.PENDING_COMPLETION,
            A.AUTO_COMPLETE_SENT,
            tx_hash=result.tx_hash,
            sent=None if result.tx_hash is None else RowTransaction.completion(result.tx_hash),
        )
        self._fx.open_window(TransactionKind.COMPLETION, result.tx_hash)

    async def fire_due_timers(self) -> None:
        state = self._s
        if state.window is not None and workflow.now() >= state.window.next_poll_at:
            await self._poll()
        if state.status is S.PENDING_PAYMENT and workflow.now() >= state.payment_deadline:
            await self._payment_deadline_reached()
        check_at = state.cancellation.check_at
        if (
            state.status is S.PENDING_CANCELLATION
            and check_at is not None
            and workflow.now() >= check_at
        ):
            await self._cancellation_expired()
        due = timers.auto_complete_due_at(state)
        if due is not None and workflow.now() >= due:
            await self.auto_complete()
        if state.close_check_at is not None and workflow.now() >= state.close_check_at:
            await self._close_check_reached()
        if state.final_at is not None and workflow.now() >= state.final_at:
            state.final_at = None
            self._fx.bump_timers()

    async def observe(
        self, tx_hash: str | None, *, chain_time: bool = False
    ) -> ChainObservation | None:
        b = self._booking
        try:
            observation: ChainObservation = await short_activities.execute(
                c.OBSERVE_BOOKING,
                ObserveRequest(
                    booking_id=b.booking_id,
                    chain_booking_id=b.chain_booking_id,
                    tx_hash=tx_hash,
                    confirmations=self._booking.policy.confirmations,
                    chain_time=chain_time,
                ),
                patch=c.PATCH_COMPACT_HISTORY,
                result_type=ChainObservation,
                start_to_close=c.OBSERVE_ACTIVITY_TIMEOUT,
                retry=c.OBSERVE_RETRY,
            )
        except (ActivityError, ApplicationError) as err:
            cause = err.cause if isinstance(err, ActivityError) else err
            workflow.logger.warning("chain poll failed", extra={"error": str(cause)})
            return None
        for event in sorted(
            observation.events, key=lambda e: (e.identity.block_number, e.identity.log_index)
        ):
            await self._events.accept(event, source="poll")
        return observation

    async def _poll(self) -> None:
        window = self._s.window
        assert window is not None
        observation = await self.observe(window.tx_hash)
        if self._s.window is not window:
            return  # an applied event closed the window
        if observation is not None and observation.tx_status is TxStatus.REVERTED:
            await self._transaction_reverted(window)
            return
        window.next_poll_at += timedelta(seconds=self._booking.policy.poll_interval_seconds)
        if window.next_poll_at > window.until:
            workflow.logger.info(
                "monitoring window ended without a result",
                extra={"purpose": window.purpose.value, "tx_hash": window.tx_hash},
            )
            self._fx.close_window()
        self._fx.bump_timers()

    async def _transaction_reverted(self, window: Window) -> None:
        state = self._s
        tx_hash = window.tx_hash
        self._fx.close_window()
        if state.refund.sent and tx_hash == state.refund.tx:
            state.refund.sent = False  # the operator may send it again
            state.refund.tx = None
            if state.status is S.PENDING_CANCELLATION and state.cancellation.current is None:
                await self._fx.transition(
                    S.PAID, A.REFUND_REVERTED, "emergency refund reverted", tx_hash=tx_hash
                )
                return
        if state.status is S.PENDING_COMPLETION and tx_hash == state.auto_complete.completion_tx:
            state.auto_complete.completion_tx = None
            state.auto_complete.sent = False
            await self._fx.transition(
                S.PAID, A.COMPLETION_REVERTED, "completion transaction reverted", tx_hash=tx_hash
            )
            return
        await self._fx.transition(
            state.status,
            A.TRANSACTION_REVERTED,
            f"{window.purpose.value} tx reverted",
            tx_hash=tx_hash,
        )

    def _postpone(self) -> datetime:
        at = timers.postpone(self._s, self._booking.policy, workflow.now())
        self._fx.bump_timers()
        return at

    async def _final_check(
        self, expected: OnChainStatus, *, outlived: datetime | None = None
    ) -> bool:
        """Read the chain before acting on a deadline; False means "not sure yet, look again".

        Inconclusive when the read fails or the contract already shows a state whose event
        is not confirmed yet (a payment mined seconds before the deadline), and, with
        `outlived` (an authorization's expiry), until the chain's own clock has passed it.
        """
        observation = await self.observe(None, chain_time=outlived is not None)
        if observation is None or observation.onchain_status is not expected:
            return False
        if outlived is not None and not timers.chain_passed(observation, outlived):
            return False
        self._s.backoff_steps = 0
        return True

    async def _payment_deadline_reached(self) -> None:
        state = self._s
        conclusive = await self._final_check(OnChainStatus.NONE, outlived=self._payment_expiry())
        if state.status is not S.PENDING_PAYMENT:
            return  # the check found the payment
        if not conclusive:
            state.payment_deadline = self._postpone()
            return
        if state.payment.unpaid_cancel_reason is not None:
            # The customer's cancellation, waiting for the payment authorization to expire.
            await self._fx.transition(
                S.CANCELLED, A.CANCELLED_UNPAID, state.payment.unpaid_cancel_reason
            )
        else:
            await self._fx.transition(S.CANCELLED, A.PAYMENT_TIMEOUT, "payment_timeout")
        self._fx.close_window()

    async def _cancellation_expired(self) -> None:
        state = self._s
        current = state.cancellation.current
        conclusive = await self._final_check(
            OnChainStatus.PAID, outlived=current.expires_at if current is not None else None
        )
        if state.status is not S.PENDING_CANCELLATION:
            return
        if not conclusive:
            state.cancellation.check_at = self._postpone()
            return
        state.cancellation.check_at = None
        state.cancellation.current = None
        await self._fx.transition(S.PAID, A.CANCELLATION_EXPIRED, "authorization expired unused")
        self._fx.close_window()

    async def _close_check_reached(self) -> None:
        """After an unpaid cancellation: make sure no payment landed with a late authorization."""
        state = self._s
        conclusive = await self._final_check(OnChainStatus.NONE, outlived=self._payment_expiry())
        if state.close_check_at is None:
            return  # a late payment was found and escalated
        state.close_check_at = self._postpone() if not conclusive else None
        self._fx.bump_timers()

    def _payment_expiry(self) -> datetime | None:
        """The last payment authorization's expiry: a payment signed with it can be mined
        until the chain's clock passes it (the later ones expire later)."""
        auth = self._s.payment.current
        return auth.expires_at if auth is not None else None

    def arm_close_check(self) -> None:
        """After an unpaid cancellation, watch until the last payment authorization expires
        on chain."""
        auth = self._s.payment.current
        if auth is None:
            return
        now = workflow.now()
        # Expired by our clock is not expired on chain (see timers.chain_passed): look once more.
        if auth.expires_at > now or workflow.patched(c.PATCH_CHAIN_CLOCK):
            self._s.close_check_at = max(auth.expires_at, now) + timedelta(
                seconds=self._booking.policy.poll_interval_seconds
            )
            self._fx.bump_timers()
