"""Builds a running `Listener` from `Settings`: chain client, engine, Temporal sink, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from bookme.endpoints import EscrowContract, escrow_contract, rpc_urls
from bookme.settings import Settings, SettingsError
from bookme.temporal_connect import wait_for_temporal
from bookme.world import watch_world
from chain.client import ChainClient
from db.engine import make_engine
from listener.config import ListenerConfig
from listener.service import Listener
from listener.temporal_sink import TemporalSignalSink
from workflows import DATA_CONVERTER

log = structlog.get_logger(__name__)


def listener_config(settings: Settings, contract: EscrowContract) -> ListenerConfig:
    return ListenerConfig(
        chain_id=settings.chain_id,
        contract_address=contract.address,
        confirmations=settings.confirmations,
        start_block=contract.start_block,
        poll_interval=settings.listener_poll_interval_seconds,
        max_block_range=settings.listener_max_block_range,
        initial_block_range=min(500, settings.listener_max_block_range),
        head_stale_after=settings.head_stale_after_seconds,
    )


def serve_metrics(settings: Settings, port: int | None, registry: CollectorRegistry) -> int:
    """Serve /metrics on `port` (None: BOOKME_LISTENER_METRICS_PORT, on by default; 0: off)."""
    port = settings.listener_metrics_port if port is None else port
    if port:
        try:
            start_http_server(port, addr=settings.metrics_host, registry=registry)
        except OSError as exc:
            # Following the chain matters more than being scraped (ListenerDown alerts on it).
            log.error("metrics_port_unavailable", port=port, error=exc.strerror)
    return port


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics_port: int | None = None,
    start_block: int | None = None,
) -> None:
    """Follow the chain (or stand by) until `stop` is set."""
    if not settings.database_url:
        raise SettingsError("BOOKME_DATABASE_URL is required to run the listener")
    contract = escrow_contract(settings, start_block)
    registry = CollectorRegistry()
    metrics_port = serve_metrics(settings, metrics_port, registry)
    async with AsyncExitStack() as stack:
        client = ChainClient.from_settings(
            settings.model_copy(update={"rpc_urls": rpc_urls(settings, websocket=True)}),
            registry=registry,
        )
        stack.push_async_callback(client.close)
        engine = make_engine(settings.database_url, pool_size=4)
        stack.push_async_callback(engine.dispose)
        await stack.enter_async_context(
            watch_world(settings, client, contract.address, registry=registry, process="listener")
        )
        temporal = await wait_for_temporal(
            settings, stop, data_converter=DATA_CONVERTER, registry=registry
        )
        if temporal is None:
            log.info("listener_stopped", before="connecting to Temporal")
            return
        sink = TemporalSignalSink(
            temporal, policy=settings.booking_policy(), task_queue=settings.task_queue
        )
        listener = Listener(
            config=listener_config(settings, contract),
            client=client,
            engine=engine,
            sink=sink,
            registry=registry,
            sightings=sink,
        )
        log.info(
            "listener_starting",
            chain_id=settings.chain_id,
            contract=contract.address,
            start_block=contract.start_block,
            confirmations=settings.confirmations,
            providers=list(client.providers),
            metrics_port=metrics_port or None,
        )
        await _follow_until_stopped(listener, stop)
    log.info("listener_stopped")


async def _follow_until_stopped(listener: Listener, stop: asyncio.Event) -> None:
    """Run `listener` until `stop` is set; its own failure is raised."""
    task = asyncio.create_task(listener.run(), name="listener")
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    failure = task.exception() if task in done and not task.cancelled() else None
    if failure is not None:
        raise failure
