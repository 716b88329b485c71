"""operator.attention_needed: from the workflow's escalations (through the booking store) and
from the reconciler's reported findings, each written with the change that raised it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.reconcile import ReconcileConfig
from activities.reconcile.audit import alert_broken_invariants, record_findings
from activities.reconcile.context import Reconcile
from activities.reconcile.metrics import ReconcileMetrics
from bookme.settings import Settings
from db.webhook_models import WebhookOutbox
from tests.webhooks.flows import S, _record, paid_booking
from tests.workflows.fakes import make_booking, payment_event
from workflows.audit import AuditAction
from workflows.reconcile_types import DivergenceKind, ReconcileAction, ReconcileFinding
from workflows.types import OrphanRecord

pytestmark = pytest.mark.integration


async def _events(sessions) -> list[tuple[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            select(WebhookOutbox.event_type, WebhookOutbox.payload).order_by(WebhookOutbox.id)
        )
        return [(t, p) for t, p in rows]


async def test_a_failed_refund_needs_an_operator_and_the_failure_is_announced(
    store, sessions, add_endpoint
):
    await add_endpoint("http://127.0.0.1:9/never")
    booking = await paid_booking(store)
    env = ActivityEnvironment()
    await env.run(
        store.apply_transition,
        _record(booking, 2, S.FAILED, S.PAID, AuditAction.CONTRADICTION, reason="mismatch"),
    )
    await env.run(
        store.apply_transition,
        _record(booking, 3, S.FAILED, S.FAILED, AuditAction.REFUND_FAILED, reason="out of gas"),
    )
    events = await _events(sessions)
    assert [t for t, _ in events] == [
        "booking.paid",
        "booking.failed",
        "operator.attention_needed",
        "operator.attention_needed",
    ]
    assert events[3][1]["data"]["action"] == "refund_failed"
    assert events[3][1]["data"]["reason"] == "out of gas"


async def test_reported_findings_and_broken_invariants_alert_operators_once_per_run(
    sessions, add_endpoint
):
    await add_endpoint("http://127.0.0.1:9/never")
    # Only the sessions and metrics are used by these two phases.
    reconcile = Reconcile(
        sessions=sessions,
        temporal=cast(Any, None),
        escrow=cast(Any, None),
        delivery=cast(Any, None),
        resync_store=cast(Any, None),
        metrics=ReconcileMetrics(CollectorRegistry()),
        config=ReconcileConfig.from_settings(Settings(_env_file=None)),
    )
    findings = [
        ReconcileFinding(
            kind=DivergenceKind.OWED_BALANCE,
            action=ReconcileAction.REPORTED,
            detail="0xabc is owed 5 base units",
        ),
        ReconcileFinding(
            kind=DivergenceKind.EVENT_GAP, action=ReconcileAction.SIGNALLED, detail="repaired"
        ),
    ]
    for _ in range(2):  # a retried activity
        await record_findings(reconcile, "run-1", findings)
        await alert_broken_invariants(reconcile, "run-1", {"escrow_balance": ["off by 1"]})
    events = await _events(sessions)
    assert [(t, p["data"]["kind"]) for t, p in events] == [
        ("operator.attention_needed", "owed_balance"),
        ("operator.attention_needed", "invariant_broken"),
    ]
    assert events[0][1]["booking_id"] is None
    assert uuid.UUID(events[0][1]["id"])


async def test_an_orphan_payment_alerts_operators_once_per_step(store, sessions, add_endpoint):
    await add_endpoint("http://127.0.0.1:9/never")
    stranger = make_booking()  # never recorded: its payment is an orphan
    record = OrphanRecord(
        chain_booking_id=stranger.chain_booking_id,
        action="refund_failed",
        payment=payment_event(stranger),
        occurred_at=datetime.now(UTC),
    )
    await store.record_orphan(record)
    await store.record_orphan(record)  # a retried activity
    events = await _events(sessions)
    assert [(t, p["data"]["action"]) for t, p in events] == [
        ("operator.attention_needed", "refund_failed")
    ]
    assert events[0][1]["data"]["chain_booking_id"] == stranger.chain_booking_id
