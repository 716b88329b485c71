"""``python worker.py`` serves bookings and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from bookme.embedded.anvil import AnvilNode
from db.migrate import upgrade_async
from tests.contracts.harness import EscrowHarness
from tests.workflows.fakes import make_booking
from workflows import BookingWorkflow, booking_workflow_id
from workflows.types import BookingStatus

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def _read_until(stream: asyncio.StreamReader, needle: str) -> str:
    seen: list[str] = []
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("worker exited early:\n" + "".join(seen))
        seen.append(line)
        if needle in line:
            return line


async def spawn_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python worker.py`` with `env`, its stdout and stderr on one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "worker.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def an_unpaid_booking_is_cancelled(client: Client, task_queue: str) -> None:
    """A booking nobody pays, run to its end by whatever polls `task_queue`."""
    booking = make_booking(now=datetime.now(UTC), scheduled_in=timedelta(days=1))
    booking = dataclasses.replace(
        booking, policy=dataclasses.replace(booking.policy, payment_deadline_seconds=2)
    )
    handle = await client.start_workflow(
        BookingWorkflow.run,
        booking,
        id=booking_workflow_id(booking.booking_id),
        task_queue=task_queue,
    )
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status is BookingStatus.CANCELLED


async def test_worker_process_serves_then_stops_on_sigterm(
    temporal, temporal_client: Client, database_url: str, fresh_chain: AnvilNode
):
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    task_queue = f"bookings-proc-{uuid.uuid4().hex[:10]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")},
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": temporal.address,
        "BOOKME_RPC_URLS": fresh_chain.http_url,
        "BOOKME_ESCROW_ADDRESS": escrow.escrow.address,
        "BOOKME_SIGNER_PRIVATE_KEY": escrow.roles.signer.private_key,
        "BOOKME_OPERATOR_PRIVATE_KEY": escrow.roles.operator.private_key,
        "BOOKME_TASK_QUEUE": task_queue,
        "BOOKME_WORKER_MAX_CONCURRENT_ACTIVITIES": "4",
    }
    process = await spawn_worker(env)
    assert process.stdout is not None
    try:
        await asyncio.wait_for(_read_until(process.stdout, "worker_started"), 60)
        await an_unpaid_booking_is_cancelled(temporal_client, task_queue)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(_read_until(process.stdout, "worker_stopped"), 60)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
