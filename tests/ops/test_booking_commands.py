"""show / replay / emergency-cancel / redrive on a real booking (real worker, DB, chain)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from bookme.settings import Settings
from chain.eip712 import BookingAuthorization, chain_booking_id
from tests.contracts.harness import EscrowHarness
from tests.ops.conftest import run_cli
from workflows import BookingWorkflow, booking_workflow_id
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    BookingPolicy,
    BookingStatus,
    ReportTransactionRequest,
    TransactionKind,
)

USDC = 10**6


async def _paid_booking(client: Client, settings: Settings, escrow: EscrowHarness) -> BookingInput:
    booking_id = str(uuid.uuid4())
    r = escrow.roles
    booking = BookingInput(
        booking_id=booking_id,
        chain_booking_id=chain_booking_id(booking_id),
        customer_wallet=r.customer.address,
        provider_wallet=r.provider.address,
        amount_units=100 * USDC,
        scheduled_at=datetime.now(UTC) + timedelta(days=2),
        service_id="svc",
        customer_id="cust",
        provider_id="prov",
        policy=BookingPolicy(confirmations=0, push_grace_seconds=0, poll_interval_seconds=1),
    )
    # Any: temporalio's stubs type an async update's result as the coroutine itself.
    handle: Any = await client.start_workflow(
        BookingWorkflow.run,
        booking,
        id=booking_workflow_id(booking_id),
        task_queue=settings.task_queue,
    )
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment,
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
    )
    receipt = escrow.pay(
        BookingAuthorization(
            booking_id=auth.chain_booking_id,
            customer=auth.customer,
            provider=auth.provider,
            inviter=auth.inviter,
            amount=auth.amount,
            platform_fee_rate=auth.platform_fee_rate,
            inviter_fee_rate=auth.inviter_fee_rate,
            release_time=auth.release_time,
            expiry=auth.expiry,
            nonce=auth.nonce,
        ),
        bytes.fromhex(auth.signature[2:]),
    )
    await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(), kind=TransactionKind.PAYMENT
        ),
    )
    return booking


async def _wait_status(client: Client, booking: BookingInput, status: BookingStatus) -> None:
    handle = client.get_workflow_handle(booking_workflow_id(booking.booking_id))
    for _ in range(600):
        if (await handle.query(BookingWorkflow.status)).status is status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"booking never reached {status}")


async def test_show_replay_and_operator_updates(stack_settings, temporal_client, escrow, capsys):
    settings = stack_settings
    booking = await _paid_booking(temporal_client, settings, escrow)
    await _wait_status(temporal_client, booking, BookingStatus.PAID)

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
    assert escrow.booking(booking.chain_booking_id)[0] == 3  # CANCELLED on chain
