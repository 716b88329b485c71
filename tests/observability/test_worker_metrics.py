"""`python worker.py` exports its RPC, sender, invariant and gauge series and the Temporal SDK's
own metrics on one /metrics port."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from db.migrate import upgrade_async
from tests.conftest import TemporalService
from tests.contracts.harness import EscrowHarness
from tests.observability.scrape import names_in, sample

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    # chain/metrics.py: the activities' RPC client and the operator's sender
    "bookme_rpc_requests_total",
    "bookme_rpc_errors_total",
    "bookme_tx_sent_total",
    "bookme_tx_confirmed_total",
    "bookme_tx_fee_cap_refusals_total",
    # activities/reconcile/metrics.py
    "bookme_invariant_escrow_balance_violations",
    "bookme_stuck_bookings",
    # bookme/worker_metrics.py: sampled gauges
    "bookme_operator_balance_wei",
    "bookme_operator_min_balance_wei",
    "bookme_bookings",
    "bookme_webhook_outbox_pending",
}


async def _scrape_until(url: str, ready: Callable[[str], bool], limit: float = 60.0) -> str:
    async with httpx.AsyncClient() as http, asyncio.timeout(limit):
        while True:
            try:
                text = (await http.get(url)).text
            except httpx.HTTPError:
                text = ""
            if text and ready(text):
                return text
            await asyncio.sleep(0.2)


async def test_one_port_serves_the_workers_series_and_the_sdks(
    temporal: TemporalService, database_url: str, fresh_chain: AnvilNode
) -> None:
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")},
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": temporal.address,
        "BOOKME_RPC_URLS": fresh_chain.http_url,
        "BOOKME_ESCROW_ADDRESS": escrow.escrow.address,
        "BOOKME_OPERATOR_PRIVATE_KEY": escrow.roles.operator.private_key,
        "BOOKME_TASK_QUEUE": f"metrics-{uuid.uuid4().hex[:10]}",
        "BOOKME_WORKER_METRICS_PORT": str(port),
        "BOOKME_WORKER_GAUGES_INTERVAL_SECONDS": "0.5",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        text = await _scrape_until(
            f"http://127.0.0.1:{port}/metrics",
            lambda t: "bookme_bookings{" in t and "temporal_" in t,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
    names = names_in(text)
    assert names >= EXPECTED, sorted(EXPECTED - names)
    # The Temporal SDK's own series, relayed from its exporter.
    assert {n for n in names if n.startswith("temporal_")}, "no Temporal SDK metrics"
    operator = escrow.roles.operator.address
    balance = sample(text, "bookme_operator_balance_wei", address=operator)
    assert balance is not None
    assert balance > 0
    assert sample(text, "bookme_bookings", status="PAID") == 0
