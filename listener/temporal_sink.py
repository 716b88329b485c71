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

    async def deliver(self, booking_id: str, event: ChainEventSignal) -> SignalOutcome:
        """The event's signal to its booking's workflow."""
        handle = self._client.get_workflow_handle(booking_workflow_id(booking_id))
        try:
            await handle.signal(_BOOKING_SIGNALS[event.kind], event)
        except RPCError as exc:
            if not _not_found(exc):
                raise
            # Finished (or never started): a late duplicate has nobody left to tell.
            log.warning(
                "listener_workflow_closed",
                booking_id=booking_id,
                event_key=event.key,
                event_type=event.kind.value,
            )
            return SignalOutcome.WORKFLOW_CLOSED
        return SignalOutcome.SIGNALLED

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        """`chain_event_reverted` to the booking's workflow, or to the orphan refund's."""
        if booking_id is None:
            return await self._revert_orphan(event)
        handle = self._client.get_workflow_handle(booking_workflow_id(booking_id))
        try:
            await handle.signal(BookingWorkflow.chain_event_reverted, event)
        except RPCError as exc:
            if not _not_found(exc):
                raise
            log.error(
                "listener_revert_for_closed_workflow",
                booking_id=booking_id,
                event_key=event.key,
                event_type=event.kind.value,
            )
            return SignalOutcome.WORKFLOW_CLOSED
        return SignalOutcome.SIGNALLED

    async def _revert_orphan(self, event: ChainEventSignal) -> SignalOutcome:
        """A running orphan refund must hear that its payment (or refund) is gone."""
        handle = self._client.get_workflow_handle(orphan_workflow_id(event.chain_booking_id))
        try:
            await handle.signal(OrphanPaymentWorkflow.chain_event_reverted, event)
        except RPCError as exc:
            if not _not_found(exc):
                raise
            # Never started (not a payment) or already finished: reconciliation sees the money.
            log.warning(
                "listener_orphan_event_reverted",
                chain_booking_id=event.chain_booking_id,
                event_key=event.key,
                event_type=event.kind.value,
            )
            return SignalOutcome.DROPPED
        return SignalOutcome.SIGNALLED

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
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            if event.kind is ChainEventKind.CANCELLATION:
                await handle.signal(OrphanPaymentWorkflow.booking_cancelled, event)
                return SignalOutcome.SIGNALLED
        except RPCError as exc:
            if not _not_found(exc):
                raise
        log.warning(
            "listener_event_for_unknown_booking",
            chain_booking_id=event.chain_booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.DROPPED
