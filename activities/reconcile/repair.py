"""Reads of a booking's workflow and row, and the one repair of a drifted row: ``resync``.

Repairs never write around a booking workflow: a drifted row is fixed by the workflow's own
``resync`` update. Only a *closed* workflow, which can take no update, has its final view (from
the ``status`` query) written by the same resync write the update uses.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import select
from temporalio.client import RPCError, RPCStatusCode, WorkflowQueryFailedError

from activities.reconcile.context import ACTOR, Reconcile
from activities.reconcile.logs import read_escrow_events
from chain.events import DecodedEvent
from db.models import Booking
from workflows.client import BookingClient
from workflows.event_codec import signal_from_event
from workflows.types import BookingResync, BookingView, ChainEventSignal, ResyncRequest

log = structlog.get_logger(__name__)

# The resync request's reason is free text the workflow keeps in its history: bounded.
MAX_RESYNC_REASON = 200


def _not_found(exc: RPCError) -> bool:
    return exc.status is RPCStatusCode.NOT_FOUND


class Repairs:
    """The workflow's view of a booking, the row's status, and resync."""

    def __init__(self, reconcile: Reconcile) -> None:
        self._r = reconcile

    async def view(self, booking_id: str) -> BookingView | None:
        """The ``status`` query; None when there is no workflow (or it cannot answer)."""
        try:
            return await BookingClient.for_booking(self._r.temporal, booking_id).status()
        except RPCError as exc:
            if _not_found(exc):
                return None
            raise
        except WorkflowQueryFailedError:
            return None

    async def views(self, booking_ids: set[str]) -> dict[str, BookingView]:
        views: dict[str, BookingView] = {}
        for booking_id in sorted(booking_ids):
            view = await self.view(booking_id)
            if view is not None:
                views[booking_id] = view
        return views

    async def db_status(self, booking_id: str) -> str | None:
        async with self._r.sessions() as session:
            status = (
                await session.execute(
                    select(Booking.status).where(Booking.id == uuid.UUID(booking_id))
                )
            ).scalar_one_or_none()
        return str(status) if status is not None else None

    async def resync(self, booking_id: str, view: BookingView, why: str, run_id: str) -> None:
        """The workflow's ``resync`` update; a closed workflow's final view is written directly."""
        request = ResyncRequest(operator=ACTOR, reason=f"{why} (run {run_id})"[:MAX_RESYNC_REASON])
        try:
            await BookingClient.for_booking(self._r.temporal, booking_id).resync(request)
            return
        except RPCError as exc:
            if not _not_found(exc):
                raise
        log.info("reconcile_resync_closed_workflow", booking_id=booking_id)
        applied = await self._applied_events(view)
        await self._r.resync_store.resync_booking(
            BookingResync(
                booking_id=booking_id,
                dedupe_key=f"{booking_id}:reconcile:{run_id}:resync",
                status=view.status,
                reason=view.reason,
                completion_tx_hash=view.completion_tx_hash,
                refund_tx_hash=view.refund_tx_hash,
                applied_events=applied,
                requested_by=ACTOR,
                request_reason=request.reason,
                occurred_at=datetime.now(UTC),
            )
        )

    async def booking_events(self, cbid: str, *, confirmations: int) -> list[DecodedEvent]:
        """One booking's escrow events since ``reconcile_from_block``, in chain order."""
        client = self._r.escrow.contract.client
        return await read_escrow_events(
            client,
            self._r.escrow.address,
            chain_id=self._r.config.chain_id,
            from_block=self._r.config.from_block,
            to_block=await client.block_number() - confirmations,
            max_block_range=self._r.config.max_block_range,
            chain_booking_id=cbid,
        )

    async def _applied_events(self, view: BookingView) -> list[ChainEventSignal]:
        """The closed workflow's applied events, rebuilt from the chain's logs (same identities)."""
        events = await self.booking_events(view.chain_booking_id, confirmations=0)
        applied = set(view.applied_event_keys)
        return [signal_from_event(e) for e in events if e.identity.key in applied]
