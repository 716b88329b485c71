"""Running booking workflows whose row says they are over (an edit no `updated_at` shows)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from activities.reconcile.agreement import TERMINAL
from activities.reconcile.audit import record_findings
from activities.reconcile.context import Reconcile, heartbeat
from activities.reconcile.repair import Repairs
from db.models import Booking
from workflows.constants import BOOKING_WORKFLOW_NAME, booking_workflow_id
from workflows.reconcile_types import (
    DivergenceKind,
    EventGapRequest,
    PhaseResult,
    ReconcileAction,
    ReconcileFinding,
)

WORKFLOW_BATCH = 200


async def check_running_workflows(
    reconcile: Reconcile, repairs: Repairs, request: EventGapRequest
) -> PhaseResult:
    """Running booking workflows whose row is terminal, resynced from the workflow's view."""
    query = f"WorkflowType = '{BOOKING_WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"
    prefix = booking_workflow_id("")
    findings: list[ReconcileFinding] = []
    scanned = 0
    batch: list[str] = []
    async for execution in reconcile.temporal.list_workflows(query):
        if execution.id.startswith(prefix):
            batch.append(execution.id.removeprefix(prefix))
        if len(batch) >= WORKFLOW_BATCH:
            findings += await _check_batch(reconcile, repairs, request.run_id, batch)
            scanned += len(batch)
            batch = []
            heartbeat("workflows", scanned)
    findings += await _check_batch(reconcile, repairs, request.run_id, batch)
    scanned += len(batch)
    await record_findings(reconcile, request.run_id, findings)
    return PhaseResult(findings=findings, scanned=scanned)


async def _check_batch(
    reconcile: Reconcile, repairs: Repairs, run_id: str, booking_ids: list[str]
) -> list[ReconcileFinding]:
    ids = []
    for booking_id in booking_ids:
        try:
            ids.append(uuid.UUID(booking_id))
        except ValueError:
            continue
    if not ids:
        return []
    async with reconcile.sessions() as session:
        rows = (
            await session.execute(
                select(Booking.id, Booking.status).where(
                    Booking.id.in_(ids), Booking.status.in_(TERMINAL)
                )
            )
        ).all()
    findings: list[ReconcileFinding] = []
    for row_id, status in rows:
        booking_id = str(row_id)
        view = await repairs.view(booking_id)
        if view is None or view.status.value == str(status):
            continue
        await repairs.resync(booking_id, view, f"row said {status}", run_id)
        findings.append(
            ReconcileFinding(
                kind=DivergenceKind.DB_DRIFT,
                action=ReconcileAction.RESYNCED,
                detail=f"row {status}, running workflow {view.status.value}",
                booking_id=booking_id,
            )
        )
    return findings
