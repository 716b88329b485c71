"""The Temporal worker: booking and orphan workflows plus their activities on the ``bookings`` queue.

``python worker.py`` builds Settings, the DB engine, the chain client, the signer and the
operator sender, then polls until SIGTERM/SIGINT. On a signal it stops polling and gives
in-flight activities ``GRACEFUL_SHUTDOWN`` to finish; whatever is still running is cancelled
and retried by another worker (every activity is idempotent).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities import (
    ChainActivities,
    ReconcileActivities,
    ReconcileConfig,
    ResyncStore,
    RetentionActivities,
    Signer,
    build_activities,
)
from activities.reconcile import ReconcileMetrics
from activities.relay import RelayActivities, RelayMetrics
from activities.tx_ledger import PostgresTxLedger
from activities.webhooks import WebhookDispatcher
from bookme.endpoints import escrow_address, rpc_urls, temporal_address
from bookme.logging import configure_logging
from bookme.schedules import (
    ensure_reconcile_schedule,
    ensure_retention_schedule,
    ensure_webhook_relay,
)
from bookme.search_attributes import ensure_search_attributes
from bookme.settings import Settings, SettingsError
from bookme.temporal_connect import temporal_connection, wait_for_temporal
from bookme.tracing import traced_client, tracer_provider
from bookme.worker_metrics import serve_worker_metrics, worker_gauges
from bookme.world import watch_world_own_client
from chain.client import ChainClient
from chain.eip712 import Eip712Domain
from chain.escrow import EscrowReader
from chain.keys import TransactionKey
from chain.operator import OperatorSender
from chain.sender import SenderConfig, TransactionSender
from db.engine import make_engine, make_session_factory
from listener.delivery import Deliverer
from listener.metrics import ListenerMetrics
from listener.store import ListenerStore
from listener.temporal_sink import TemporalSignalSink
from workflows import DATA_CONVERTER, WORKFLOWS
from workflows.sandbox import workflow_runner

log = structlog.get_logger(__name__)

GRACEFUL_SHUTDOWN = timedelta(seconds=30)


@asynccontextmanager
async def activity_dependencies(
    settings: Settings,
    temporal: Client | None = None,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[list[Callable[..., Any]]]:
    """Every activity bound to its dependencies; closes the engine and chain client after.

    The reconcile activities need the Temporal client (they query, signal and update booking
    workflows); without one only the booking and orphan activities are built.
    """
    if not settings.database_url:
        raise SettingsError("BOOKME_DATABASE_URL is required to run the worker")
    async with AsyncExitStack() as stack:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        sessions = make_session_factory(engine)
        client = ChainClient.from_settings(
            settings.model_copy(update={"rpc_urls": rpc_urls(settings)}), registry=registry
        )
        stack.push_async_callback(client.close)
        escrow = EscrowReader(client, escrow_address(settings))
        operator = operator_sender(settings, client, escrow, sessions, registry)
        signer_key = settings.signer_key()
        if signer_key is None:
            log.warning("worker_without_signer_key", effect="authorizations fail")
        store = ResyncStore(sessions, escrow_address=escrow.address)
        signer = Signer(
            sessions,
            signer_key=signer_key,
            domain=Eip712Domain(chain_id=settings.chain_id, verifying_contract=escrow.address),
        )
        chain = ChainActivities(
            client,
            escrow,
            operator,
            chain_id=settings.chain_id,
            max_block_range=settings.listener_max_block_range,
        )
        reconcile = None
        if temporal is not None:
            reconcile = reconcile_activities(
                settings, temporal, engine, sessions, escrow, store, registry
            )
        relay = relay_activities(settings, client, escrow, operator, sessions, registry)
        yield [
            *build_activities(
                store=store,
                signer=signer,
                chain=chain,
                reconcile=reconcile,
                retention=RetentionActivities(sessions),
                webhooks=WebhookDispatcher.from_settings(settings, sessions, registry),
            ),
            relay.relay_payment,
        ]


def operator_sender(
    settings: Settings,
    client: ChainClient,
    escrow: EscrowReader,
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry | None,
) -> OperatorSender | None:
    """The operator's transactions (auto-complete, refunds), or None without an operator key."""
    operator_key = settings.operator_key()
    if operator_key is None:
        log.warning("worker_without_operator_key", effect="auto-complete and refunds fail")
        return None
    key = TransactionKey(operator_key)
    sender = TransactionSender(
        client,
        key,
        chain_id=settings.chain_id,
        config=SenderConfig(
            confirmations=settings.confirmations,
            max_fee_per_gas_cap=settings.operator_max_fee_per_gas_wei,
        ),
        registry=registry,
        # Nonces from Postgres: every replica sends with this key (chain/ledger.py).
        ledger=PostgresTxLedger(sessions, chain_id=settings.chain_id, sender=key.address),
    )
    return OperatorSender(sender, escrow)


def relay_activities(
    settings: Settings,
    client: ChainClient,
    escrow: EscrowReader,
    operator: OperatorSender | None,
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry | None,
) -> RelayActivities:
    """Relayed payments (issue #19), sent with the operator's sender and its ledger."""
    return RelayActivities(
        client=client,
        escrow=escrow,
        sender=None if operator is None else operator.sender,
        sessions=sessions,
        settings=settings,
        metrics=RelayMetrics(registry or CollectorRegistry()),
    )


def reconcile_activities(
    settings: Settings,
    temporal: Client,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    escrow: EscrowReader,
    store: ResyncStore,
    registry: CollectorRegistry | None,
) -> ReconcileActivities:
    """The reconciler, delivering missing events through the listener's store-then-signal path."""
    deliverer = Deliverer(
        ListenerStore(engine, chain_id=settings.chain_id, contract_address=escrow.address),
        TemporalSignalSink(
            temporal, policy=settings.booking_policy(), task_queue=settings.task_queue
        ),
        # The listener's own series live in the listener process; these stay private.
        ListenerMetrics(CollectorRegistry()),
        concurrency=8,
        cache_size=1000,
    )
    return ReconcileActivities(
        sessions=sessions,
        temporal=temporal,
        escrow=escrow,
        delivery=deliverer,
        resync_store=store,
        metrics=ReconcileMetrics(registry or CollectorRegistry()),
        config=ReconcileConfig.from_settings(settings),
    )


def build_worker(
    client: Client, settings: Settings, activities: Sequence[Callable[..., Any]]
) -> Worker:
    """The worker with the configured concurrency, graceful shutdown and the one sandbox."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=list(activities),
        workflow_runner=workflow_runner(),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_cached_workflows=settings.worker_max_cached_workflows,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down gracefully."""
    # Before connecting: the SDK's own metrics come from the runtime the client is created in.
    registry = CollectorRegistry()
    serve_worker_metrics(settings, registry)
    client = await wait_for_temporal(
        settings, stop, data_converter=DATA_CONVERTER, registry=registry
    )
    if client is None:
        log.info("worker_stopped", before="connecting to Temporal")
        return
    client = traced_client(client, tracer_provider(settings, "bookme-worker"))
    await ensure_search_attributes(client, settings.environment, temporal_connection(settings))
    async with (
        watch_world_own_client(
            settings,
            rpc_urls(settings),
            escrow_address(settings),
            registry=registry,
            process="worker",
        ),
        activity_dependencies(settings, client, registry) as activities,
        worker_gauges(settings, registry),
    ):
        worker = build_worker(client, settings, activities)
        async with worker:
            await ensure_reconcile_schedule(client, settings)
            await ensure_retention_schedule(client, settings)
            await ensure_webhook_relay(client, settings)
            log.info(
                "worker_started",
                task_queue=settings.task_queue,
                temporal=temporal_address(settings),
                max_concurrent_activities=settings.worker_max_concurrent_activities,
            )
            await stop.wait()
            log.info("worker_stopping", grace_seconds=GRACEFUL_SHUTDOWN.total_seconds())
    log.info("worker_stopped")


async def _main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run(settings, stop)


def main() -> int:
    try:
        asyncio.run(_main())
    except SettingsError as exc:
        print(f"worker: {exc}", file=sys.stderr)  # noqa: T201 - CLI entry point
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
