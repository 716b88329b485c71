"""``OrphanPaymentWorkflow``: refund a payment whose booking id this service never issued.

The workflow id comes from the chain booking id (``constants.orphan_workflow_id``), so the
listener can start it for every delivery of the payment and only one refund is ever sent. The
refund's ``BookingCancelled`` arrives as the ``booking_cancelled`` signal or is found by polling.

Reorgs (``chain_event_reverted``): a retracted payment is not refunded; the workflow waits for
it to be re-included until its authorization must have expired (a later inclusion would revert
on chain), then ends unrefunded. A re-included payment is refunded through the idempotent
sender, which answers "already done" when the earlier refund was re-included too. A retracted
refund is sent again. Each of these is recorded (``record_orphan``). After the refund the
workflow stays open for the policy's ``settlement_finality_seconds`` so such reorgs still
reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from chain.reason_codes import OnChainReason
    from workflows import constants as c
    from workflows.types import (
        ChainEventKind,
        ChainEventSignal,
        ChainObservation,
        ObserveRequest,
        OperatorTxRequest,
        OperatorTxResult,
        OrphanPaymentInput,
        OrphanRecord,
        OrphanResult,
    )

MAX_POLL_GAP = timedelta(hours=1)


@workflow.defn(name=c.ORPHAN_WORKFLOW_NAME)
class OrphanPaymentWorkflow:
    @workflow.init
    def __init__(self, orphan: OrphanPaymentInput) -> None:
        self._payment = orphan.event
        self._policy = orphan.policy
        self._payment_live = True
        self._refund: ChainEventSignal | None = None
        self._refund_tx: str | None = None
        self._refund_reverted = False

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        """A repeated delivery (the refund is under way) or the re-inclusion after a reorg."""
        if not self._payment_live and self._ours(event, ChainEventKind.PAYMENT):
            self._payment = event
            self._payment_live = True

    @workflow.signal(name="booking_cancelled")
    def booking_cancelled(self, event: ChainEventSignal) -> None:
        self._take_refund(event)

    @workflow.signal(name="chain_event_reverted")
    def chain_event_reverted(self, event: ChainEventSignal) -> None:
        """A reorg removed the payment or the refund; the run loop records and reacts."""
        if event.key == self._payment.key:
            # The refund came after the payment, so the reorg took it too.
            self._payment_live = False
            self._refund = None
        elif self._refund is not None and event.key == self._refund.key:
            self._refund = None
            self._refund_reverted = True
        else:
            workflow.logger.warning(
                "orphan: revert of an event it never took", extra={"key": event.key}
            )

    @workflow.query(name="status")
    def status(self) -> OrphanResult:
        return OrphanResult(
            chain_booking_id=self._payment.chain_booking_id,
            refund_tx_hash=self._refund_tx,
            refunded=self._refund is not None,
        )

    def _ours(self, event: ChainEventSignal, kind: ChainEventKind) -> bool:
        return (
            event.kind is kind
            and event.chain_booking_id.lower() == self._payment.chain_booking_id.lower()
        )

    def _take_refund(self, event: ChainEventSignal) -> None:
        if self._ours(event, ChainEventKind.CANCELLATION):
            self._refund = event

    @workflow.run
    async def run(self, orphan: OrphanPaymentInput) -> OrphanResult:
        await self._record("orphan_payment_detected")
        refund_sent = False
        while True:
            if not self._payment_live:
                await self._record("orphan_payment_reorged")
                if not await self._await_reinclusion():
                    await self._record("orphan_payment_vanished")
                    return self.status()
                await self._record("orphan_payment_reincluded")
                refund_sent = False  # the sender reads the chain: a re-included refund is kept
            if self._refund_reverted:
                self._refund_reverted = False
                await self._record("orphan_refund_reorged")
                refund_sent = False
            if not refund_sent:
                if not await self._send_refund():
                    continue
                refund_sent = True
                await self._record("orphan_refund_sent")
            await self._wait_for_refund()
            if self._refund is None:
                continue
            await self._record("orphan_refunded")
            if self._refund is not None and not await self._reorged_before_final():
                return self.status()
            # A reorg took the refund (or the payment) while it was recorded, or since.

    async def _reorged_before_final(self) -> bool:
        """Stay open for the finality period: a reorg may still take the refund or payment."""
        seconds = self._policy.settlement_finality_seconds
        if seconds <= 0 or not workflow.patched(c.PATCH_SETTLEMENT_FINALITY):
            return False
        try:
            await workflow.wait_condition(
                lambda: self._refund is None or not self._payment_live or self._refund_reverted,
                timeout=timedelta(seconds=seconds),
            )
        except TimeoutError:
            return False
        return True

    async def _send_refund(self) -> bool:
        """emergencyCancelBooking; False when a reorg removed the payment it was refunding."""
        try:
            result: OperatorTxResult = await workflow.execute_activity(
                c.SEND_EMERGENCY_CANCEL,
                OperatorTxRequest(
                    booking_id="",
                    chain_booking_id=self._payment.chain_booking_id,
                    reason=OnChainReason.ORPHAN_REFUND.value,
                ),
                result_type=OperatorTxResult,
                start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
                heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
                retry_policy=c.SEND_RETRY,
            )
        except ActivityError as err:
            if self._payment_live:
                # The chain shows a reorg before the listener reports it: give the listener a
                # monitoring window to say so; otherwise the refusal is real (the run fails).
                window = timedelta(seconds=self._policy.monitoring_window_seconds)
                try:
                    await workflow.wait_condition(lambda: not self._payment_live, timeout=window)
                except TimeoutError:
                    raise err from None
            return False
        self._refund_tx = result.tx_hash
        return True

    async def _wait_for_refund(self) -> None:
        """Until the refund is seen, or a reorg removes the payment or a refund taken meanwhile."""
        await self._watch(
            lambda: self._refund is not None or not self._payment_live or self._refund_reverted,
            tx_hash=self._refund_tx,
            take=self._take_refund,
        )

    async def _await_reinclusion(self) -> bool:
        """Watch for the payment again until its authorization has surely expired."""
        ttl = self._policy.authorization_ttl_seconds + self._policy.monitoring_window_seconds
        return await self._watch(
            lambda: self._payment_live,
            tx_hash=self._payment.identity.tx_hash,
            take=self.payment_confirmed,
            deadline=workflow.now() + timedelta(seconds=ttl),
        )

    async def _watch(
        self,
        done: Callable[[], bool],
        *,
        tx_hash: str | None,
        take: Callable[[ChainEventSignal], None],
        deadline: datetime | None = None,
    ) -> bool:
        """Push first; then poll the chain, spacing polls out to bound history."""
        gap = timedelta(seconds=self._policy.push_grace_seconds)
        while not done():
            wait = gap if deadline is None else min(gap, deadline - workflow.now())
            if wait <= timedelta(0):
                return done()
            try:
                await workflow.wait_condition(done, timeout=wait)
                return True
            except TimeoutError:
                pass
            if deadline is not None and workflow.now() >= deadline:
                return done()
            try:
                observation: ChainObservation = await workflow.execute_activity(
                    c.OBSERVE_BOOKING,
                    ObserveRequest(
                        booking_id="",
                        chain_booking_id=self._payment.chain_booking_id,
                        tx_hash=tx_hash,
                        confirmations=self._policy.confirmations,
                    ),
                    result_type=ChainObservation,
                    start_to_close_timeout=c.OBSERVE_ACTIVITY_TIMEOUT,
                    retry_policy=c.OBSERVE_RETRY,
                )
            except ActivityError as err:
                workflow.logger.warning("orphan poll failed", extra={"error": str(err.cause)})
            else:
                for event in observation.events:
                    take(event)
            gap = min(
                max(gap * 2, timedelta(seconds=self._policy.poll_interval_seconds)), MAX_POLL_GAP
            )
        return True

    async def _record(self, action: str) -> None:
        await workflow.execute_activity(
            c.RECORD_ORPHAN,
            OrphanRecord(
                chain_booking_id=self._payment.chain_booking_id,
                action=action,
                payment=self._payment,
                payment_live=self._payment_live,
                refund=self._refund,
                refund_tx_hash=self._refund_tx,
                occurred_at=workflow.now(),
            ),
            start_to_close_timeout=c.DB_ACTIVITY_TIMEOUT,
            retry_policy=c.DB_RETRY,
        )
