"""How reconcile runs start (worker's Schedule, POST /admin/reconcile) and a clean mixed workload."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from temporalio.client import Client, ScheduleIntervalSpec

import worker
from api.main import create_app
from bookme.embedded.anvil import AnvilNode
from bookme.schedules import ensure_reconcile_schedule
from tests.api.helpers import CUSTOMER_AUTH, JWT_SECRET, OPERATOR_AUTH, serve
from workflows import BookingWorkflow
from workflows.reconcile_types import (
    PROGRESS_QUERY,
    RECONCILE_SCHEDULE_ID,
    DivergenceKind,
    InvariantName,
    ReconcileProgress,
    ReconcileReport,
)

from .conftest import USDC, Rig, wait_for

pytestmark = pytest.mark.integration
ALL_HOLD = {name.value: 0 for name in InvariantName}


async def test_the_schedule_exists_once_the_worker_runs(
    rig: Rig, temporal_client: Client, temporal, fresh_chain: AnvilNode
) -> None:
    settings = rig.settings.model_copy(
        update={"temporal_address": temporal.address, "reconcile_interval_seconds": 3 * 3600}
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(settings, stop))
    handle = temporal_client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    try:

        async def interval() -> timedelta | None:
            try:
                described = await handle.describe()
            except Exception:
                return None
            spec = described.schedule.spec.intervals
            return spec[0].every if spec and isinstance(spec[0], ScheduleIntervalSpec) else None

        await wait_for(interval, timedelta(hours=3))
        # Idempotent: a restart with another interval updates the same schedule.
        await ensure_reconcile_schedule(
            temporal_client, settings.model_copy(update={"reconcile_interval_seconds": 21600})
        )
        assert await interval() == timedelta(hours=6)
    finally:
        stop.set()
        await running
        await handle.delete()


async def test_operator_starts_a_run_over_http_and_a_mixed_workload_balances(rig: Rig) -> None:
    r = rig.escrow.roles
    completed, completed_handle = await rig.paid()
    refunded, _ = await rig.paid()
    held, _ = await rig.paid()
    await rig.start(rig.booking())  # unpaid
    start = await rig.chain.block_number() + 1
    rig.escrow.complete(completed.chain_booking_id, r.customer)
    rig.escrow.emergency(refunded.chain_booking_id, reason="ops refund")
    await rig.deliver(start)

    async def status() -> str:
        return (await completed_handle.query(BookingWorkflow.status)).status.value

    await wait_for(status, "COMPLETED")
    await wait_for(lambda: rig.db_status(refunded.booking_id), "CANCELLED")
    assert await rig.db_status(held.booking_id) == "PAID"

    settings = rig.settings.model_copy(
        update={
            "jwt_secret": SecretStr(JWT_SECRET),
            "jwt_algorithm": "HS256",
            "jwks_url": "",
            "temporal_address": "unused:0",
            "temporal_ui_url": "http://ui.example",
        }
    )
    app = create_app(settings, registry=CollectorRegistry(), temporal_client=rig.client)
    async with serve(app) as http:
        refused = await http.post("/admin/reconcile", json={}, headers=CUSTOMER_AUTH)
        assert refused.status_code == 403
        started = await http.post("/admin/reconcile", json={"full": True}, headers=OPERATOR_AUTH)
    assert started.status_code == 202
    body = started.json()
    assert body["workflow_id"].startswith("reconcile-manual-")
    assert body["link"] == f"http://ui.example/namespaces/default/workflows/{body['workflow_id']}"

    handle = rig.client.get_workflow_handle(body["workflow_id"], result_type=ReconcileReport)
    report = await handle.result()
    assert sum(report.counts.values()) == 0, report.findings
    assert report.invariants == ALL_HOLD
    assert report.scanned == 4
    progress = await handle.query(PROGRESS_QUERY, result_type=ReconcileProgress)
    assert (progress.scanned, progress.total, progress.phase) == (4, 4, "done")
    assert rig.registry.get_sample_value("bookme_invariant_escrow_balance_violations") == 0
    assert rig.escrow.balance(rig.reader.address) == 100 * USDC  # only the held booking


async def test_a_booking_past_its_payment_deadline_is_reported_stuck(rig: Rig) -> None:
    booking = rig.booking()
    await rig.start(booking)
    await wait_for(lambda: rig.db_status(booking.booking_id), "PENDING_PAYMENT")
    # As if its workflow had stopped making progress two hours ago (deadline 30 min + 15 min).
    await rig.sql(
        "UPDATE bookings SET created_at = now() - interval '2 hours',"
        " payment_deadline_at = now() - interval '90 minutes' WHERE id = :id",
        id=uuid.UUID(booking.booking_id),
    )

    report = await rig.reconcile()

    assert report.stuck == [booking.booking_id]
    assert report.counts.get(DivergenceKind.STUCK.value) == 1
    [finding] = [f for f in report.findings if f.kind is DivergenceKind.STUCK]
    assert "payment deadline" in finding.detail
    assert rig.registry.get_sample_value("bookme_stuck_bookings") == 1
