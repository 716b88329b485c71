"""`python worker.py` exports its RPC, sender, invariant and gauge series and the Temporal SDK's
own metrics on one /metrics port; the dashboard and the alert rules read only exported names."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML: locked through uvicorn[standard], no stubs
from prometheus_client import CollectorRegistry

from api.metrics import ApiMetrics
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from db.migrate import upgrade_async
from listener.metrics import ListenerMetrics
from tests.conftest import TemporalService
from tests.contracts.harness import EscrowHarness
from tests.observability.promql import missing
from tests.observability.scrape import names_in, registry_names, sample

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
    _check_dashboard_and_rules(names)


def _check_dashboard_and_rules(worker_names: set[str]) -> None:
    """Every metric the Grafana dashboard and the alert rules read is one the code exports: the
    worker's scrape (its own series and the SDK's) plus the API's and the listener's registries."""
    api, listener = CollectorRegistry(), CollectorRegistry()
    ApiMetrics(api)
    ListenerMetrics(listener)
    exported = worker_names | registry_names([api, listener])
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "bookme.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(queries) >= 12
    assert not missing(queries, exported), missing(queries, exported)
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "bookme.rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    # `up` is Prometheus' own series for every target it scrapes.
    assert not missing(exprs, exported, frozenset({"up"})), missing(exprs, exported)
