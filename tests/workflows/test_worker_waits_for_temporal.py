"""``python worker.py`` started before its Temporal answers waits for it (issue #18).

It used to exit 2 at once, and a supervisor restarted it in a loop for as long as Temporal was
away. Now it stays up, logs each attempt, says so on /metrics, serves bookings once Temporal
answers (a proxy opened later on the port it was given) and exits 0 on SIGTERM while waiting.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from bench.chaos.tcp_proxy import TcpFaultProxy
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from db.migrate import upgrade_async
from tests.conftest import TemporalService
from tests.contracts.harness import EscrowHarness
from tests.workflows.test_worker_process import (
    _read_until,
    an_unpaid_booking_is_cancelled,
    spawn_worker,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
API_KEY = "bm-temporal-api-key-worker-wait-0123456789"


def _env(
    database_url: str, chain: AnvilNode, escrow: EscrowHarness, **extra: str
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")},
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_RPC_URLS": chain.http_url,
        "BOOKME_ESCROW_ADDRESS": escrow.escrow.address,
        "BOOKME_SIGNER_PRIVATE_KEY": escrow.roles.signer.private_key,
        "BOOKME_OPERATOR_PRIVATE_KEY": escrow.roles.operator.private_key,
        "BOOKME_LOG_JSON": "true",
        **extra,
    }


@asynccontextmanager
async def _worker(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await spawn_worker(env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _unreachable(process: asyncio.subprocess.Process, attempts: int) -> list[str]:
    """The first `attempts` temporal_unreachable lines (the worker still running after each)."""
    assert process.stdout is not None
    lines = []
    for _ in range(attempts):
        lines.append(
            await asyncio.wait_for(_read_until(process.stdout, "temporal_unreachable"), 30)
        )
        assert process.returncode is None
    return lines


async def test_worker_waits_for_temporal_then_serves_bookings(
    temporal: TemporalService, temporal_client: Client, database_url: str, fresh_chain: AnvilNode
):
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    task_queue = f"bookings-wait-{uuid.uuid4().hex[:10]}"
    port, metrics_port = free_port(), free_port()
    host, temporal_port = temporal.address.rsplit(":", 1)
    env = _env(
        database_url,
        fresh_chain,
        escrow,
        BOOKME_TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
        BOOKME_TASK_QUEUE=task_queue,
        BOOKME_WORKER_METRICS_PORT=str(metrics_port),
    )
    async with _worker(env) as process:
        # Attempts 1-3 (0.5 s then 1 s apart): the process outlives refused connections.
        first, *_ = await _unreachable(process, 3)
        event = json.loads(first)
        assert (event["attempt"], event["retry_in_seconds"]) == (1, 0.5)
        assert event["temporal"] == f"127.0.0.1:{port} (namespace default, plaintext)"
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert "bookme_temporal_waiting 1.0" in metrics

        proxy = TcpFaultProxy("temporal", host, int(temporal_port), port=port)
        await proxy.start()
        try:
            assert process.stdout is not None
            await asyncio.wait_for(_read_until(process.stdout, "worker_started"), 60)
            asyncio.get_running_loop().create_task(process.stdout.read())  # keep the pipe drained
            await an_unpaid_booking_is_cancelled(temporal_client, task_queue)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert "bookme_temporal_waiting 0.0" in metrics
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0
        finally:
            await proxy.stop()


async def test_sigterm_while_waiting_for_temporal_exits_0(
    database_url: str, fresh_chain: AnvilNode
):
    escrow = EscrowHarness(fresh_chain)
    env = _env(
        database_url,
        fresh_chain,
        escrow,
        BOOKME_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        BOOKME_TEMPORAL_API_KEY=API_KEY,
        BOOKME_WORKER_METRICS_PORT="0",
    )
    async with _worker(env) as process:
        lines = await _unreachable(process, 2)
        process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        rest = await asyncio.wait_for(process.stdout.read(), 10)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    assert "API key" in lines[0]  # described, never shown
    assert API_KEY not in "".join(lines) + rest.decode()
