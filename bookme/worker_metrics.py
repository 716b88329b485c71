"""Everything the worker exports on one /metrics (BOOKME_WORKER_METRICS_PORT).

Its own registry carries the RPC client's, the operator sender's and the reconciler's series, the
world checks, and the gauges sampled here (operator gas, bookings by status, webhook backlog,
payment to PAID latency). The Temporal SDK's own metrics come from the SDK's Prometheus exporter,
bound on a private loopback port and relayed into the same registry at each scrape: one target
per process, whatever a deployment's Prometheus is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import structlog
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from bookme.endpoints import rpc_urls
from bookme.settings import Settings
from chain.client import ChainClient
from chain.keys import TransactionKey
from db.engine import make_engine, make_session_factory
from db.stats import work_stats

log = structlog.get_logger(__name__)

PAYMENT_LATENCY_WINDOW = timedelta(minutes=15)
SDK_SCRAPE_TIMEOUT_SECONDS = 2.0


class SdkMetricsRelay(Collector):
    """The Temporal SDK's exporter, read at each scrape and re-exported unchanged."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> Iterable[Metric]:
        return []  # unknown until scraped; registering must not call the exporter

    def collect(self) -> Iterable[Metric]:
        try:
            body = httpx.get(self.url, timeout=SDK_SCRAPE_TIMEOUT_SECONDS).text
        except httpx.HTTPError as exc:
            log.warning("sdk_metrics_unavailable", error=type(exc).__name__)
            return []
        return list(text_string_to_metric_families(body))


def _loopback_port() -> int:
    """A free loopback port for the SDK's exporter (bookme.embedded needs dev-only packages)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_worker_metrics(settings: Settings, registry: CollectorRegistry) -> None:
    """Serve `registry` plus the SDK's metrics; call before connecting to Temporal (the SDK's
    exporter lives in the default runtime, which clients take when they connect)."""
    if not settings.worker_metrics_port:
        return
    sdk_address = f"127.0.0.1:{_loopback_port()}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=sdk_address)))
    Runtime.set_default(runtime, error_if_already_set=False)
    registry.register(SdkMetricsRelay(f"http://{sdk_address}/metrics"))
    port = settings.worker_metrics_port
    try:
        start_http_server(port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        # Serving bookings matters more than being scraped (WorkerDown alerts on it).
        log.error("metrics_port_unavailable", port=port, error=exc.strerror)
        return
    log.info("worker_metrics_serving", host=settings.metrics_host, port=port)


class WorkerGauges:
    """Sampled state: operator gas (with its threshold and fee cap), bookings, webhook backlog."""

    def __init__(self, registry: CollectorRegistry, settings: Settings) -> None:
        self.balance = Gauge(
            "bookme_operator_balance_wei",
            "ETH balance of the operator key (pays auto-completes and refunds), in wei.",
            ["address"],
            registry=registry,
        )
        self.min_balance = Gauge(
            "bookme_operator_min_balance_wei",
            "BOOKME_OPERATOR_MIN_BALANCE_WEI: below it the OperatorGasLow alert fires.",
            registry=registry,
        )
        self.max_fee = Gauge(
            "bookme_operator_max_fee_per_gas_wei",
            "BOOKME_OPERATOR_MAX_FEE_PER_GAS_WEI: operator sends needing more are refused.",
            registry=registry,
        )
        self.bookings = Gauge(
            "bookme_bookings", "Bookings by status.", ["status"], registry=registry
        )
        self.webhook_pending = Gauge(
            "bookme_webhook_outbox_pending",
            "Webhook deliveries not yet delivered (nor dead).",
            registry=registry,
        )
        self.payment_to_paid = Gauge(
            "bookme_payment_receipt_to_paid_seconds",
            "Confirmed payment stored to booking PAID, quantiles over the last 15 minutes.",
            ["quantile"],
            registry=registry,
        )
        self.sampled_at = Gauge(
            "bookme_worker_gauges_sampled_timestamp_seconds",
            "When these gauges were last sampled (unix time), per source.",
            ["source"],
            registry=registry,
        )
        self.min_balance.set(settings.operator_min_balance_wei)
        self.max_fee.set(settings.operator_max_fee_per_gas_wei)


@asynccontextmanager
async def worker_gauges(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[WorkerGauges]:
    """Sample the gauges every BOOKME_WORKER_GAUGES_INTERVAL_SECONDS while the context is open."""
    gauges = WorkerGauges(registry, settings)
    key = settings.operator_key()
    operator = TransactionKey(key).address if key is not None else None
    # Its own client and engine: the activities' ones live inside activity_dependencies, and
    # this client's RPC series stay private (the activities' client exports the same names).
    client = ChainClient.from_settings(settings.model_copy(update={"rpc_urls": rpc_urls(settings)}))
    engine = make_engine(settings.database_url, pool_size=1)
    sessions = make_session_factory(engine)

    async def sample_forever() -> None:
        while True:
            if operator is not None:
                with _sampling("operator_gas", gauges):
                    gauges.balance.labels(operator).set(await client.get_balance(operator))
            with _sampling("postgres", gauges):
                async with sessions() as session:
                    stats = await work_stats(session, PAYMENT_LATENCY_WINDOW)
                for status, count in stats.bookings_by_status.items():
                    gauges.bookings.labels(status).set(count)
                gauges.webhook_pending.set(stats.webhook_pending)
                gauges.payment_to_paid.clear()  # nothing paid lately: no quantiles, not old ones
                for quantile, seconds in stats.payment_to_paid_seconds.items():
                    gauges.payment_to_paid.labels(f"{quantile:g}").set(seconds)
            await asyncio.sleep(settings.worker_gauges_interval_seconds)

    task = asyncio.create_task(sample_forever(), name="worker-gauges")
    try:
        yield gauges
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
        await engine.dispose()


@contextlib.contextmanager
def _sampling(source: str, gauges: WorkerGauges) -> Iterator[None]:
    """One source's sample; a failure is logged and leaves the last values (and their age)."""
    try:
        yield
    except Exception as exc:  # sampling is best effort; the next round tries again
        log.warning("worker_gauges_failed", source=source, error=type(exc).__name__)
    else:
        gauges.sampled_at.labels(source).set(time.time())
