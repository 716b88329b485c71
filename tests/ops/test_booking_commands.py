"""show / reconcile / replay / emergency-cancel / redrive on real bookings (the reconcile rig:
real worker with every activity, Postgres, Temporal and anvil)."""

from __future__ import annotations

import pytest

from bookme.settings import Settings
from tests.conftest import TemporalService
from tests.ops.conftest import run_cli
from tests.reconcile.conftest import (  # noqa: F401 - the fixture, shared with tests/reconcile
    Rig,
    rig,
    update,
    wait_for,
)
from workflows import BookingWorkflow, booking_workflow_id
from workflows.types import CancellationRequest, PartyRole


@pytest.fixture
def settings(rig: Rig, temporal: TemporalService) -> Settings:  # noqa: F811 - the fixture above
    """What an operator's shell would have: the rig's settings plus where Temporal is."""
    return rig.settings.model_copy(
        update={
            "temporal_address": temporal.address,
            "temporal_namespace": temporal.namespace,
            "temporal_ui_url": temporal.ui_url or "",
        }
    )


async def test_show_replay_and_operator_updates(rig: Rig, settings, capsys):  # noqa: F811
    booking, _ = await rig.paid()

    shown = await run_cli(settings, "show", booking.booking_id)
    assert shown.code == 0
    for column in ("Postgres", "workflow (RUNNING)", "chain (escrow"):
        assert column in shown.out
    status_line = next(line for line in shown.out.splitlines() if "status" in line)
    assert status_line.count("PAID") == 3
    assert "DIVERGES" not in shown.out
    assert f"/workflows/{booking_workflow_id(booking.booking_id)}/" in shown.out
    by_chain_id = await run_cli(settings, "show", booking.chain_booking_id)
    assert booking.booking_id in by_chain_id.out

    replayed = await run_cli(settings, "replay", booking.booking_id)
    assert replayed.code == 0
    assert "determinism OK" in replayed.out

    refused = await run_cli(settings, "redrive", booking.booking_id, "--operator", "ops")
    assert refused.code == 2
    assert "only a FAILED booking is re-driven" in capsys.readouterr().err

    cancelled = await run_cli(
        settings, "emergency-cancel", booking.booking_id, "--reason", "fraud", "--operator", "ops"
    )
    assert cancelled.code == 0, cancelled.out
    assert "refund tx 0x" in cancelled.out
    assert rig.escrow.booking(booking.chain_booking_id)[0] == 3  # CANCELLED on chain


async def test_show_marks_a_divergence_and_reconcile_repairs_it(rig: Rig, settings):  # noqa: F811
    booking, _ = await rig.paid()
    await rig.sql(
        "UPDATE bookings SET status = 'COMPLETED' WHERE id = CAST(:id AS uuid)",
        id=booking.booking_id,
    )

    shown = await run_cli(settings, "show", booking.booking_id)
    status_line = next(line for line in shown.out.splitlines() if "status" in line)
    assert "COMPLETED" in status_line
    assert "DIVERGES" in status_line
    assert "1 divergence(s)" in shown.out

    reconciled = await run_cli(settings, "reconcile", "--wait")
    assert reconciled.code == 0, reconciled.out
    assert "reconcile-manual-" in reconciled.out
    assert "db_drift" in reconciled.out
    assert "money invariants" in reconciled.out

    assert "DIVERGES" not in (await run_cli(settings, "show", booking.booking_id)).out
    assert await rig.db_status(booking.booking_id) == "PAID"


async def test_show_agrees_with_a_booking_cancelled_before_payment(rig: Rig, settings):  # noqa: F811
    """Its chain state is NONE, which is right: show used to flag it DIVERGES (issue 15)."""
    booking = rig.booking()
    handle = await rig.start(booking)
    await update(
        handle,
        BookingWorkflow.request_cancellation,
        CancellationRequest(
            role=PartyRole.CUSTOMER, wallet=booking.customer_wallet, reason="not needed"
        ),
    )
    await wait_for(lambda: rig.db_status(booking.booking_id), "CANCELLED")
    shown = await run_cli(settings, "show", booking.booking_id)
    assert shown.code == 0
    status_line = next(line for line in shown.out.splitlines() if "status" in line)
    assert status_line.count("CANCELLED") == 2  # Postgres and the workflow
    assert "NONE" in status_line  # the chain never saw it
    assert "DIVERGES" not in shown.out
