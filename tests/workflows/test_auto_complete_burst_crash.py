"""A burst of auto-completions survives a worker SIGKILLed in the middle of it.

A real ``python worker.py`` process sends the operator's completeService for a burst of paid
bookings whose release times fall within a few seconds; once part of the burst is in the
ledger it is killed with SIGKILL and a new process takes over. Every booking must end COMPLETED
with exactly one transaction of the operator key, on consecutive nonces: no gap (a nonce taken
and never used), no double-send (a second transaction for one booking, mined or reverted).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_typing import HexStr
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from web3 import Web3

from bookme.embedded.anvil import AnvilNode
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from db.models import Booking
from db.tx_ledger_models import LedgerTransaction
from tests.contracts.harness import EscrowHarness
from tests.workflows.test_lifecycle_integration import Stack, _paid
from tests.workflows.test_worker_process import _read_until, spawn_worker
from workflows.types import BookingInput, BookingStatus, BookingView

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BURST = 24
# From creation to release: room to pay on a loaded machine (payments of the burst are concurrent).
RELEASE_AFTER = timedelta(seconds=10)
KILL_AFTER = BURST // 4  # ledger rows recorded before the SIGKILL
POLL_SECONDS = 0.02


async def _start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    process = await spawn_worker(env)
    assert process.stdout is not None
    await asyncio.wait_for(_read_until(process.stdout, "worker_started"), 60)
    # Keep draining its output: a full pipe would block the worker's logging.
    asyncio.get_running_loop().create_task(process.stdout.read())
    return process


async def _recorded_at_least(
    sessions: async_sessionmaker[AsyncSession], count: int, *, within: float
) -> int:
    """The ledger's row count once it reaches ``count`` (polled: the worker is another process)."""
    for _ in range(int(within / POLL_SECONDS)):
        async with sessions() as session:
            recorded = int(await session.scalar(select(func.count(LedgerTransaction.id))) or 0)
        if recorded >= count:
            return recorded
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"fewer than {count} operator transactions recorded in {within:g}s")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_worker_killed_mid_burst_completes_every_booking_once_on_gap_free_nonces(
    temporal, temporal_client: Client, database_url: str, fresh_chain: AnvilNode
):
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    operator = Web3.to_checksum_address(escrow.roles.operator.address)
    first_nonce = escrow.w3.eth.get_transaction_count(operator)
    stack = Stack(
        client=temporal_client,
        task_queue=f"bookings-burst-{uuid.uuid4().hex[:10]}",
        escrow=escrow,
        database_url=database_url,
        replicas=(CollectorRegistry(), CollectorRegistry()),
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")},
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": temporal.address,
        "BOOKME_RPC_URLS": fresh_chain.http_url,
        "BOOKME_CHAIN_ID": str(fresh_chain.chain_id),
        "BOOKME_ESCROW_ADDRESS": escrow.escrow.address,
        "BOOKME_SIGNER_PRIVATE_KEY": escrow.roles.signer.private_key,
        "BOOKME_OPERATOR_PRIVATE_KEY": escrow.roles.operator.private_key,
        "BOOKME_CONFIRMATIONS": "0",
        "BOOKME_TASK_QUEUE": stack.task_queue,
        "BOOKME_WORKER_METRICS_PORT": "0",
    }
    engine = make_engine(database_url, pool_size=2)
    sessions = make_session_factory(engine)
    worker = await _start_worker(env)
    try:

        async def paid_booking() -> tuple[BookingInput, WorkflowHandle[Any, BookingView]]:
            # Released a little after its own payment (the chain refuses a release time in the
            # past); the timer fires BLOCK_TIME_MARGIN later, together with the others'.
            booking = stack.booking(
                scheduled_at=datetime.now(UTC) + RELEASE_AFTER, auto_complete_delay=0
            )
            return booking, await _paid(stack, booking)

        burst = await asyncio.gather(*(paid_booking() for _ in range(BURST)))
        bookings, handles = [b for b, _ in burst], [h for _, h in burst]
        # No time travel: anvil stamps each block with the wall clock, past the release by then.
        in_ledger = await _recorded_at_least(sessions, KILL_AFTER, within=60)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        assert in_ledger < BURST, "the kill must land inside the burst"
        worker = await _start_worker(env)

        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 150)
        assert [r.status for r in results] == [BookingStatus.COMPLETED] * BURST

        async with sessions() as session:
            rows = list(
                await session.scalars(select(LedgerTransaction).order_by(LedgerTransaction.nonce))
            )
            statuses = set(await session.scalars(select(Booking.status)))
    finally:
        await _stop(worker)
        await engine.dispose()

    assert {str(s) for s in statuses} == {"COMPLETED"}
    # Nonces: one per booking, consecutive from the key's first, each used once.
    assert [row.nonce for row in rows] == list(range(first_nonce, first_nonce + BURST))
    assert escrow.w3.eth.get_transaction_count(operator) == first_nonce + BURST
    # One transaction per booking: no intent recorded twice, every one mined successfully.
    per_intent = Counter(row.intent for row in rows)
    assert len(per_intent) == BURST
    assert set(per_intent.values()) == {1}
    assert {row.outcome for row in rows} == {"succeeded"}
    completed = escrow.escrow.events.ServiceCompleted.get_logs(from_block=0)
    ours = Counter("0x" + bytes(log["args"]["bookingId"]).hex() for log in completed)
    assert ours == Counter(b.chain_booking_id for b in bookings)
    mined = [escrow.w3.eth.get_transaction_receipt(HexStr(row.tx_hashes[-1])) for row in rows]
    assert all(receipt["status"] == 1 for receipt in mined)
    assert {receipt["from"] for receipt in mined} == {operator}
