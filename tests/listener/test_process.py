"""`python -m listener` as a real process: kill -9 mid-backfill and mid-live, restart, compare."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.worker import Worker

from tests.conftest import TemporalService
from tests.listener.conftest import cursor_row
from tests.listener.driver import EscrowDriver, EventEmitter
from tests.listener.receivers import ReceivingOrphan
from workflows import DATA_CONVERTER
from workflows.constants import orphan_workflow_id

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BACKFILL = 400
LIVE = 60


def _start(env: dict[str, str], log: Path, start_block: int) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "listener", "--start-block", str(start_block)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


async def _stored(engine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM blockchain_events")))


async def _checkpoint(engine) -> int:
    row = await cursor_row(engine)
    return -1 if row is None else int(row.last_block_number)


async def _wait(check, limit: float = 120.0) -> None:
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
async def orphan_worker(temporal_client: Client) -> AsyncIterator[tuple[Client, str]]:
    client = Client(
        temporal_client.service_client,
        namespace=temporal_client.namespace,
        data_converter=DATA_CONVERTER,
    )
    task_queue = f"listener-process-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[ReceivingOrphan]):
        yield client, task_queue


async def test_kill_9_mid_backfill_and_mid_live_loses_nothing(
    driver: EscrowDriver,
    engine,
    database_url: str,
    temporal: TemporalService,
    orphan_worker: tuple[Client, str],
    tmp_path: Path,
):
    client, task_queue = orphan_worker
    emitter = EventEmitter(driver)
    await emitter.install()
    start = await driver.head() + 1
    ids = await emitter.emit(BACKFILL)
    env = {
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": temporal.address,
        "BOOKME_TEMPORAL_NAMESPACE": temporal.namespace,
        "BOOKME_TASK_QUEUE": task_queue,
        "BOOKME_RPC_URLS": f"{driver.node.ws_url},{driver.node.http_url}",
        "BOOKME_CHAIN_ID": str(driver.node.chain_id),
        "BOOKME_ESCROW_ADDRESS": emitter.address,
        "BOOKME_DEPLOYMENT_FILE": str(tmp_path / "none.json"),
        "BOOKME_CONFIRMATIONS": "0",
        "BOOKME_LISTENER_MAX_BLOCK_RANGE": "20",
        "BOOKME_LISTENER_POLL_INTERVAL_SECONDS": "0.2",
    }
    log = tmp_path / "listener.log"
    head = await driver.head()

    process = _start(env, log, start)
    try:
        await _wait(lambda: _mid(engine, start, head))
        _kill(process)
        killed_at = await _checkpoint(engine)
        assert killed_at < head, "the kill was meant to land mid-backfill"

        process = _start(env, log, start)
        await _wait(lambda: _at(engine, head))

        # Live: new events while it runs; kill it as soon as some of them are stored.
        stored_before = await _stored(engine)
        live = asyncio.create_task(emitter.emit(LIVE))
        await _wait(lambda: _more(engine, stored_before))
        _kill(process)
        ids += await live
        head = await driver.head()

        process = _start(env, log, start)
        await _wait(lambda: _at(engine, head))
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

    assert await _stored(engine) == BACKFILL + LIVE
    async with engine.connect() as conn:
        distinct = await conn.scalar(
            text("SELECT count(DISTINCT chain_booking_id) FROM blockchain_events")
        )
    assert distinct == BACKFILL + LIVE
    # Every event reached its (orphan) workflow; a workflow dedupes the few re-sent ones.
    for cbid in ids:
        handle = client.get_workflow_handle(orphan_workflow_id(cbid))
        payments = await handle.query(ReceivingOrphan.get_payments)
        assert len(set(payments)) == 1, (cbid, payments)
        await handle.terminate()


async def _mid(engine, start: int, head: int) -> bool:
    at = await _checkpoint(engine)
    return start + 40 <= at < head - 40


async def _at(engine, block: int) -> bool:
    return await _checkpoint(engine) >= block


async def _more(engine, count: int) -> bool:
    return await _stored(engine) > count
