"""Findings into the booking's audit trail, the log, the divergence counter and the webhooks.

One `booking_events` row per booking, run and kind (kind ``reconcile_<kind>``, actor
``reconciler``); findings without a booking (orphan event gaps) are logged only. A finding the
reconciler only reports (an operator decides) and a broken money invariant also become an
``operator.attention_needed`` webhook event, written in the same transaction as the audit rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.dialects.postgresql import insert

from activities.reconcile.context import ACTOR, Reconcile
from db import outbox
from db.models import BookingEvent
from workflows.reconcile_types import ReconcileAction, ReconcileFinding

log = structlog.get_logger(__name__)

# `booking_events.reason` is for a person reading the trail: the detail, bounded.
MAX_REASON = 500


def _row(run_id: str, finding: ReconcileFinding) -> dict[str, Any]:
    assert finding.booking_id is not None
    return {
        "booking_id": uuid.UUID(finding.booking_id),
        "kind": f"reconcile_{finding.kind.value}",
        "reason": finding.detail[:MAX_REASON],
        "actor": ACTOR,
        "tx_hash": finding.tx_hash,
        "log_index": finding.log_index,
        "dedupe_key": f"reconcile:{run_id}:{finding.kind.value}:{finding.tx_hash or ''}",
        "details": {"action": finding.action.value, "run_id": run_id},
    }


async def record_findings(
    reconcile: Reconcile, run_id: str, findings: Sequence[ReconcileFinding]
) -> None:
    """Log and count every finding; audit those about a booking, once per run and kind."""
    rows = []
    for finding in findings:
        log.warning(
            "reconcile_finding",
            kind=finding.kind.value,
            action=finding.action.value,
            booking_id=finding.booking_id,
            tx_hash=finding.tx_hash,
            detail=finding.detail,
        )
        reconcile.metrics.divergences.labels(finding.kind.value, finding.action.value).inc()
        if finding.booking_id is not None:
            rows.append(_row(run_id, finding))
    alerts = [f for f in findings if f.action is ReconcileAction.REPORTED]
    if not rows and not alerts:
        return
    async with reconcile.sessions.begin() as session:
        if rows:
            await session.execute(
                insert(BookingEvent)
                .values(rows)
                .on_conflict_do_nothing(
                    index_elements=[BookingEvent.booking_id, BookingEvent.dedupe_key],
                    index_where=BookingEvent.dedupe_key.is_not(None),
                )
            )
        for finding in alerts:
            await _alert(session, run_id, finding)


async def _alert(session: Any, run_id: str, finding: ReconcileFinding) -> None:
    booking = finding.booking_id
    await outbox.enqueue(
        session,
        event_type=outbox.WebhookEventType.OPERATOR_ATTENTION_NEEDED,
        dedupe_key=f"reconcile:{run_id}:{finding.kind.value}:{booking or ''}:{finding.tx_hash or ''}",
        booking_id=None if booking is None else uuid.UUID(booking),
        data={
            "source": "reconciler",
            "run_id": run_id,
            "kind": finding.kind.value,
            "detail": finding.detail[:MAX_REASON],
            "tx_hash": finding.tx_hash,
        },
    )


async def alert_broken_invariants(
    reconcile: Reconcile, run_id: str, details: dict[str, list[str]]
) -> None:
    """A money invariant does not hold: one webhook event per run for the operators."""
    async with reconcile.sessions.begin() as session:
        await outbox.enqueue(
            session,
            event_type=outbox.WebhookEventType.OPERATOR_ATTENTION_NEEDED,
            dedupe_key=f"reconcile:{run_id}:invariants",
            data={
                "source": "reconciler",
                "run_id": run_id,
                "kind": "invariant_broken",
                "invariants": details,
            },
        )
