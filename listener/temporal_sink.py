"""The production `SignalSink`: typed Temporal signals to booking and orphan workflows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from temporalio.client import Client, RPCError, RPCStatusCode
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from listener.sink import SignalOutcome
from workflows.booking import BookingWorkflow
from workflows.constants import TASK_QUEUE, booking_workflow_id, orphan_workflow_id
from workflows.orphan import OrphanPaymentWorkflow
from workflows.types import BookingPolicy, ChainEventKind, ChainEventSignal, OrphanPaymentInput

log = structlog.get_logger(__name__)

_BOOKING_SIGNALS: dict[ChainEventKind, Callable[..., Any]] = {
    ChainEventKind.PAYMENT: BookingWorkflow.payment_confirmed,
    ChainEventKind.COMPLETION: BookingWorkflow.service_completed,
    ChainEventKind.CANCELLATION: BookingWorkflow.booking_cancelled,
}
# The orphan workflow is started by its payment; the refund's cancellation reaches it too.
_ORPHAN_START_SIGNAL = "payment_confirmed"


def _not_found(exc: RPCError) -> bool:
    return exc.status is RPCStatusCode.NOT_FOUND


class TemporalSignalSink:
    """Signals `booking-{uuid}` workflows; signal-with-start for orphan payments."""

    def __init__(
        self, client: Client, *, policy: BookingPolicy, task_queue: str = TASK_QUEUE
    ) -> None:
        self._client = client
        self._policy = policy
        self._task_queue = task_queue

    async def _signal(
        self, workflow_id: str, signal: Callable[..., Any], event: ChainEventSignal
    ) -> bool:
        """False when no such workflow is running (finished, or never started)."""
        try:
            await self._client.get_workflow_handle(workflow_id).signal(signal, event)
        except RPCError as exc:
            if not _not_found(exc):
                raise
            return False
        return True

    async def deliver(self, booking_id: str, event: ChainEventSignal) -> SignalOutcome:
        """The event's signal to its booking's workflow."""
        workflow_id = booking_workflow_id(booking_id)
        if await self._signal(workflow_id, _BOOKING_SIGNALS[event.kind], event):
            return SignalOutcome.SIGNALLED
        # Finished (or never started): a late duplicate has nobody left to tell.
        log.warning(
            "listener_workflow_closed",
            booking_id=booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.WORKFLOW_CLOSED

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        """`chain_event_reverted` to the booking's workflow, or to the orphan refund's."""
        if booking_id is None:
            return await self._revert_orphan(event)
        workflow_id = booking_workflow_id(booking_id)
        if await self._signal(workflow_id, BookingWorkflow.chain_event_reverted, event):
            return SignalOutcome.SIGNALLED
        log.error(
            "listener_revert_for_closed_workflow",
            booking_id=booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.WORKFLOW_CLOSED

    async def _revert_orphan(self, event: ChainEventSignal) -> SignalOutcome:
        """A running orphan refund must hear that its payment (or refund) is gone."""
        workflow_id = orphan_workflow_id(event.chain_booking_id)
        if await self._signal(workflow_id, OrphanPaymentWorkflow.chain_event_reverted, event):
            return SignalOutcome.SIGNALLED
        # Never started (not a payment) or already finished: reconciliation sees the money.
        log.warning(
            "listener_orphan_event_reverted",
            chain_booking_id=event.chain_booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.DROPPED

    async def orphan(self, event: ChainEventSignal) -> SignalOutcome:
        """Payments start (or reach) the orphan refund; its cancellation reaches it too."""
        workflow_id = orphan_workflow_id(event.chain_booking_id)
        if event.kind is ChainEventKind.PAYMENT:
            try:
                await self._client.start_workflow(
                    OrphanPaymentWorkflow.run,
                    OrphanPaymentInput(event=event, policy=self._policy),
                    id=workflow_id,
                    task_queue=self._task_queue,
                    start_signal=_ORPHAN_START_SIGNAL,
                    start_signal_args=[event],
                    # A finished refund must never be started again for a replayed payment.
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
            except WorkflowAlreadyStartedError:
                return SignalOutcome.WORKFLOW_CLOSED
            log.warning(
                "listener_orphan_payment",
                chain_booking_id=event.chain_booking_id,
                event_key=event.key,
                workflow_id=workflow_id,
            )
            return SignalOutcome.STARTED
        if event.kind is ChainEventKind.CANCELLATION and await self._signal(
            workflow_id, OrphanPaymentWorkflow.booking_cancelled, event
        ):
            return SignalOutcome.SIGNALLED
        log.warning(
            "listener_event_for_unknown_booking",
            chain_booking_id=event.chain_booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.DROPPED
