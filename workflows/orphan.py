"""``OrphanPaymentWorkflow``: refund a payment whose booking id this service never issued.

The workflow id comes from the chain booking id (``constants.orphan_workflow_id``), so the
listener can start it for every delivery of the payment and only one refund is ever sent. The
refund's ``BookingCancelled`` arrives as the ``booking_cancelled`` signal or is found by polling.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
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
        self._refund: ChainEventSignal | None = None
        self._refund_tx: str | None = None

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        """A repeated delivery of the orphan payment: the refund is already under way."""

    @workflow.signal(name="booking_cancelled")
    def booking_cancelled(self, event: ChainEventSignal) -> None:
        self._take_refund(event)

    @workflow.query(name="status")
    def status(self) -> OrphanResult:
        return OrphanResult(
            chain_booking_id=self._payment.chain_booking_id,
            refund_tx_hash=self._refund_tx,
            refunded=self._refund is not None,
        )

    def _take_refund(self, event: ChainEventSignal) -> None:
        if (
            event.kind is ChainEventKind.CANCELLATION
            and event.chain_booking_id.lower() == self._payment.chain_booking_id.lower()
        ):
            self._refund = event

    @workflow.run
    async def run(self, orphan: OrphanPaymentInput) -> OrphanResult:
        await self._record("orphan_payment_detected")
        result: OperatorTxResult = await workflow.execute_activity(
            c.SEND_EMERGENCY_CANCEL,
            OperatorTxRequest(
                booking_id="",
                chain_booking_id=self._payment.chain_booking_id,
                reason="orphan_payment",
            ),
            result_type=OperatorTxResult,
            start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
            heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
            retry_policy=c.SEND_RETRY,
        )
        self._refund_tx = result.tx_hash
        await self._record("orphan_refund_sent")
        await self._wait_for_refund()
        await self._record("orphan_refunded")
        return self.status()

    async def _wait_for_refund(self) -> None:
        """Push first; then poll the refund receipt, spacing polls out to bound history."""
        gap = timedelta(seconds=self._policy.push_grace_seconds)
        while self._refund is None:
            try:
                await workflow.wait_condition(lambda: self._refund is not None, timeout=gap)
                return
            except TimeoutError:
                pass
            try:
                observation: ChainObservation = await workflow.execute_activity(
                    c.OBSERVE_BOOKING,
                    ObserveRequest(
                        booking_id="",
                        chain_booking_id=self._payment.chain_booking_id,
                        tx_hash=self._refund_tx,
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
                    self._take_refund(event)
            gap = min(
                max(gap * 2, timedelta(seconds=self._policy.poll_interval_seconds)), MAX_POLL_GAP
            )

    async def _record(self, action: str) -> None:
        await workflow.execute_activity(
            c.RECORD_ORPHAN,
            OrphanRecord(
                chain_booking_id=self._payment.chain_booking_id,
                action=action,
                payment=self._payment,
                refund=self._refund,
                refund_tx_hash=self._refund_tx,
                occurred_at=workflow.now(),
            ),
            start_to_close_timeout=c.DB_ACTIVITY_TIMEOUT,
            retry_policy=c.DB_RETRY,
        )
