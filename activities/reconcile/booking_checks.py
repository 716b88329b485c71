"""Each booking in scope: chain vs workflow vs Postgres, repaired through the workflow.

A chain state the workflow has not reached is fed the confirmed events it missed (store then
signal); a row that disagrees with its workflow is resynced from the workflow's view.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from activities.reconcile.agreement import MISSING_KIND, agrees
from activities.reconcile.audit import record_findings
from activities.reconcile.context import Reconcile, heartbeat
from activities.reconcile.repair import Repairs
from activities.reconcile.scope import in_scope
from chain.escrow import OnChainBookingStatus
from db.models import Booking
from workflows.constants import booking_workflow_id
from workflows.reconcile_types import (
    BookingPageRequest,
    DivergenceKind,
    PhaseResult,
    ReconcileAction,
    ReconcileFinding,
)
from workflows.types import BookingView

# Concurrent per-booking checks inside one page (each: a query, a view call, maybe a repair).
PAGE_CONCURRENCY = 16


async def check_bookings_page(
    reconcile: Reconcile, repairs: Repairs, request: BookingPageRequest
) -> PhaseResult:
    """One keyset page of bookings in scope, each compared and repaired."""
    query = select(Booking.id, Booking.status, Booking.blockchain_booking_id).where(
        *in_scope(request.since)
    )
    if request.after_id is not None:
        query = query.where(Booking.id > uuid.UUID(request.after_id))
    async with reconcile.sessions() as session:
        rows = (await session.execute(query.order_by(Booking.id).limit(request.page_size))).all()
    checker = _BookingCheck(reconcile, repairs, request.run_id, set(request.repaired_chain_ids))
    limit = asyncio.Semaphore(PAGE_CONCURRENCY)
    findings: list[ReconcileFinding] = []

    async def check(booking_id: str, db_status: str, cbid: str) -> None:
        async with limit:
            findings.extend(await checker.check(booking_id, db_status, cbid))
            heartbeat("bookings", booking_id)

    async with asyncio.TaskGroup() as tasks:
        for booking_id, status, cbid in rows:
            tasks.create_task(check(str(booking_id), str(status), str(cbid or "")))
    await record_findings(reconcile, request.run_id, findings)
    last = str(rows[-1][0]) if len(rows) == request.page_size else None
    return PhaseResult(findings=findings, scanned=len(rows), last_id=last)


class _BookingCheck:
    """One page's comparison of each booking's three views."""

    def __init__(
        self, reconcile: Reconcile, repairs: Repairs, run_id: str, repaired: set[str]
    ) -> None:
        self._r = reconcile
        self._repairs = repairs
        self._run_id = run_id
        # Chain booking ids the event gap check signalled this run: their workflow catches up.
        self._repaired = repaired

    async def check(self, booking_id: str, db_status: str, cbid: str) -> list[ReconcileFinding]:
        view = await self._repairs.view(booking_id)
        if view is None:
            return [
                ReconcileFinding(
                    kind=DivergenceKind.WORKFLOW_MISSING,
                    action=ReconcileAction.REPORTED,
                    detail=f"no workflow {booking_workflow_id(booking_id)} (row {db_status})",
                    booking_id=booking_id,
                )
            ]
        onchain = await self._r.escrow.get_booking(cbid)
        if not agrees(view.status, onchain.status) and cbid.lower() not in self._repaired:
            return [await self._chain_divergence(booking_id, view, onchain.status, cbid)]
        if db_status != view.status.value:
            # Re-read both: the workflow persists a transition just before it shows in the query.
            view = await self._repairs.view(booking_id) or view
            if await self._repairs.db_status(booking_id) != view.status.value:
                await self._repairs.resync(booking_id, view, f"row said {db_status}", self._run_id)
                return [
                    ReconcileFinding(
                        kind=DivergenceKind.DB_DRIFT,
                        action=ReconcileAction.RESYNCED,
                        detail=f"row {db_status}, workflow {view.status.value}",
                        booking_id=booking_id,
                    )
                ]
        return []

    async def _chain_divergence(
        self, booking_id: str, view: BookingView, onchain: OnChainBookingStatus, cbid: str
    ) -> ReconcileFinding:
        kind = MISSING_KIND.get(onchain)
        detail = f"chain {onchain.name}, workflow {view.status.value}"
        applied = set(view.applied_event_keys) | set(view.pending_event_keys)
        if kind is not None:
            events = await self._repairs.booking_events(
                cbid, confirmations=self._r.config.confirmations
            )
            missing = [e for e in events if e.identity.key not in applied]
            if missing:
                await self._r.delivery.deliver_events(missing)
                return ReconcileFinding(
                    kind=kind,
                    action=ReconcileAction.SIGNALLED,
                    detail=f"{detail}: delivered {len(missing)} event(s)",
                    booking_id=booking_id,
                    tx_hash=missing[-1].identity.tx_hash,
                    log_index=missing[-1].identity.log_index,
                )
            detail += ": the confirmed logs hold nothing the workflow has not seen"
        return ReconcileFinding(
            kind=kind or DivergenceKind.CHAIN_CONFLICT,
            action=ReconcileAction.REPORTED,
            detail=detail,
            booking_id=booking_id,
        )
