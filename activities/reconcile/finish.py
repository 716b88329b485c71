"""The run's last phase: money invariants, stuck bookings and owed balances, as findings and metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import select

from activities.reconcile.agreement import TERMINAL
from activities.reconcile.audit import alert_broken_invariants, record_findings
from activities.reconcile.context import Reconcile
from activities.reconcile.invariants import check_invariants
from activities.reconcile.stuck import find_stuck
from db.models import Booking
from workflows.reconcile_types import (
    DivergenceKind,
    FinishRequest,
    FinishResult,
    ReconcileAction,
    ReconcileFinding,
)

log = structlog.get_logger(__name__)


async def finish_run(reconcile: Reconcile, request: FinishRequest) -> FinishResult:
    """Money invariants and stuck bookings, exported as metrics."""
    config = reconcile.config
    report = await check_invariants(
        reconcile.sessions,
        reconcile.escrow,
        received_grace=config.received_grace,
        from_block=config.from_block,
        max_block_range=config.max_block_range,
    )
    async with reconcile.sessions() as session:
        stuck = await find_stuck(
            session,
            payment_deadline=config.payment_deadline,
            auto_complete_delay=config.auto_complete_delay,
            grace=config.stuck_grace,
        )
    findings = [
        ReconcileFinding(
            kind=DivergenceKind.STUCK,
            action=ReconcileAction.REPORTED,
            detail=f"{s.status} past its {s.deadline} deadline ({s.due_at.isoformat()})",
            booking_id=s.booking_id,
        )
        for s in stuck
    ]
    findings += await _owed_findings(reconcile)
    await record_findings(reconcile, request.run_id, findings)
    counts = report.counts()
    reconcile.metrics.record_invariants(counts)
    reconcile.metrics.stuck.set(len(stuck))
    reconcile.metrics.last_run.set(datetime.now(UTC).timestamp())
    if not report.holds:
        log.error("reconcile_invariant_broken", invariants=counts, details=report.details())
        await alert_broken_invariants(reconcile, request.run_id, report.details())
    return FinishResult(
        findings=findings,
        invariants=counts,
        invariant_details=report.details(),
        stuck=[s.booking_id for s in stuck],
    )


async def _owed_findings(reconcile: Reconcile) -> list[ReconcileFinding]:
    """Blocked recipients' legs held as owed balances (reported: only they can withdraw)."""
    escrow = reconcile.escrow
    if await escrow.total_owed() == 0:
        return []
    async with reconcile.sessions() as session:
        wallets: set[str] = set()
        for column in (Booking.customer_wallet, Booking.provider_wallet, Booking.inviter_wallet):
            rows = await session.execute(
                select(column).distinct().where(column.is_not(None), Booking.status.in_(TERMINAL))
            )
            wallets.update(str(w) for w in rows.scalars())
    wallets.add(await escrow.treasury())
    findings = []
    for wallet in sorted(wallets, key=str.lower):
        owed = await escrow.owed_balance(wallet)
        if owed:
            findings.append(
                ReconcileFinding(
                    kind=DivergenceKind.OWED_BALANCE,
                    action=ReconcileAction.REPORTED,
                    detail=f"{wallet} is owed {owed} base units (transfer refused)",
                )
            )
    return findings
