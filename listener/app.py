"""Builds a running `Listener` from `Settings`: chain client, engine, Temporal sink, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, start_http_server
from temporalio.client import Client

from bookme.settings import Settings, SettingsError
from chain.client import ChainClient
from chain.deploy import Deployment
from db.engine import make_engine
from listener.config import ListenerConfig
from listener.service import Listener
from listener.temporal_sink import TemporalSignalSink
from workflows import DATA_CONVERTER

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class Contract:
    """The escrow to follow and the first block worth scanning."""

    address: str
    start_block: int


def resolve_contract(settings: Settings, start_block: int | None = None) -> Contract:
    """BOOKME_ESCROW_ADDRESS, else the deployment file (whose block is the scan start)."""
    deployment: Deployment | None = None
    if settings.deployment_file.exists():
        deployment = Deployment.read_json(settings.deployment_file)
    address = settings.escrow_address or (deployment.escrow if deployment else "")
    if not address:
        raise SettingsError(
            f"no BOOKME_ESCROW_ADDRESS and no deployment file at {settings.deployment_file}"
        )
    if start_block is None:
        same = deployment is not None and deployment.escrow.lower() == address.lower()
        start_block = deployment.block_number if same and deployment else 0
    return Contract(address=address, start_block=start_block)


def rpc_urls(settings: Settings) -> list[str]:
    """Configured providers, else the embedded anvil: WebSocket for heads, HTTP as backup."""
    if settings.rpc_urls:
        return list(settings.rpc_urls)
    port = settings.dev_anvil_port
    return [f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"]


def listener_config(settings: Settings, contract: Contract) -> ListenerConfig:
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


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics_port: int = 0,
    start_block: int | None = None,
) -> None:
    """Follow the chain (or stand by) until `stop` is set."""
    if not settings.database_url:
        raise SettingsError("BOOKME_DATABASE_URL is required to run the listener")
    contract = resolve_contract(settings, start_block)
    registry = CollectorRegistry()
    if metrics_port:
        start_http_server(metrics_port, addr="0.0.0.0", registry=registry)  # noqa: S104
    async with AsyncExitStack() as stack:
        client = ChainClient.from_settings(
            settings.model_copy(update={"rpc_urls": rpc_urls(settings)}), registry=registry
        )
        stack.push_async_callback(client.close)
        engine = make_engine(settings.database_url, pool_size=4)
        stack.push_async_callback(engine.dispose)
        temporal = await Client.connect(
            settings.temporal_address or f"127.0.0.1:{settings.dev_temporal_port}",
            namespace=settings.temporal_namespace,
            data_converter=DATA_CONVERTER,
        )
        sink = TemporalSignalSink(
            temporal, policy=settings.booking_policy(), task_queue=settings.task_queue
        )
        listener = Listener(
            config=listener_config(settings, contract),
            client=client,
            engine=engine,
            sink=sink,
            registry=registry,
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
    log.info("listener_stopped")
