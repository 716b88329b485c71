"""The production `SignalSink`: typed Temporal signals to booking and orphan workflows."""

from __future__ import annotations

import structlog
from temporalio.client import Client

from listener.sink import SignalOutcome
from workflows.client import BookingClient, OrphanClient
from workflows.constants import TASK_QUEUE
from workflows.types import BookingPolicy, ChainEventKind, ChainEventSignal, PaymentSighting

log = structlog.get_logger(__name__)


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
        if await BookingClient.for_booking(self._client, booking_id).deliver(event):
            return SignalOutcome.SIGNALLED
        # Finished (or never started): a late duplicate has nobody left to tell.
        log.warning(
            "listener_workflow_closed",
            booking_id=booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.WORKFLOW_CLOSED

    async def sighting(self, booking_id: str, sighting: PaymentSighting) -> SignalOutcome:
        """`payment_seen` to the booking's workflow (a payment not yet confirmed, or its removal)."""
        if await BookingClient.for_booking(self._client, booking_id).payment_seen(sighting):
            return SignalOutcome.SIGNALLED
        return SignalOutcome.WORKFLOW_CLOSED

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        """`chain_event_reverted` to the booking's workflow, or to the orphan refund's."""
        if booking_id is None:
            return await self._revert_orphan(event)
        if await BookingClient.for_booking(self._client, booking_id).revert(event):
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
        if await OrphanClient(self._client, event.chain_booking_id).revert(event):
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
        orphan = OrphanClient(self._client, event.chain_booking_id)
        if event.kind is ChainEventKind.PAYMENT:
            started = await orphan.start(event, policy=self._policy, task_queue=self._task_queue)
            if not started:
                return SignalOutcome.WORKFLOW_CLOSED
            log.warning(
                "listener_orphan_payment",
                chain_booking_id=event.chain_booking_id,
                event_key=event.key,
                workflow_id=orphan.workflow_id,
            )
            return SignalOutcome.STARTED
        if event.kind is ChainEventKind.CANCELLATION and await orphan.cancelled(event):
            return SignalOutcome.SIGNALLED
        log.warning(
            "listener_event_for_unknown_booking",
            chain_booking_id=event.chain_booking_id,
            event_key=event.key,
            event_type=event.kind.value,
        )
        return SignalOutcome.DROPPED
