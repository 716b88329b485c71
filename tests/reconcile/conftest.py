"""A real stack for the reconciler: Postgres, Temporal, anvil, the worker with every activity.

No listener runs: ``Rig.deliver`` plays it (store then signal through `listener.delivery`), so a
test decides exactly which chain events the system heard of. Bookings push-only (the first
poll would be an hour away), so a workflow learns nothing the test did not deliver.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle

from activities.reconcile.logs import read_escrow_events
from bookme.embedded.anvil import AnvilNode
from bookme.settings import Settings, default_booking_policy
from chain.client import ChainClient
from chain.eip712 import chain_booking_id
from chain.escrow import EscrowReader
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from listener.delivery import Deliverer
from listener.metrics import ListenerMetrics
from listener.store import ListenerStore
from listener.temporal_sink import TemporalSignalSink
from tests.contracts.harness import EscrowHarness
from worker import activity_dependencies, build_worker
from workflows import BookingWorkflow, booking_workflow_id
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_types import ReconcileInput, ReconcileReport
from workflows.relay_terms import booking_authorization
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    BookingPolicy,
    BookingStatus,
    BookingView,
    PaymentAuthorization,
)

USDC = 10**6
WAIT_SECONDS = 30.0


@dataclass
class Rig:
    client: Client
    settings: Settings
    escrow: EscrowHarness
    reader: EscrowReader
    chain: ChainClient
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    deliverer: Deliverer
    registry: CollectorRegistry

    @property
    def policy(self) -> BookingPolicy:
        return default_booking_policy(
            chain_id=self.settings.chain_id,
            confirmations=0,
            push_grace_seconds=3600,
            poll_interval_seconds=5,
            monitoring_window_seconds=7200,
            settlement_finality_seconds=0,  # tests await results
        )

    def booking(self, *, scheduled_in: timedelta = timedelta(days=1)) -> BookingInput:
        booking_id = str(uuid.uuid4())
        r = self.escrow.roles
        return BookingInput(
            booking_id=booking_id,
            chain_booking_id=chain_booking_id(booking_id),
            customer_wallet=r.customer.address,
            provider_wallet=r.provider.address,
            amount_units=100 * USDC,
            scheduled_at=datetime.now(UTC) + scheduled_in,
            service_id="svc",
            customer_id="cust",
            provider_id="prov",
            policy=self.policy,
        )

    async def start(self, booking: BookingInput) -> WorkflowHandle[Any, BookingView]:
        return await self.client.start_workflow(
            BookingWorkflow.run,
            booking,
            id=booking_workflow_id(booking.booking_id),
            task_queue=self.settings.task_queue,
        )

    async def authorized(
        self,
    ) -> tuple[BookingInput, WorkflowHandle[Any, BookingView], PaymentAuthorization]:
        booking = self.booking()
        handle = await self.start(booking)
        auth = await update(
            handle,
            BookingWorkflow.authorize_payment,
            AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
        )
        return booking, handle, auth

    def pay(self, auth: PaymentAuthorization) -> int:
        """Pay on-chain (nobody is told); returns the block."""
        onchain = booking_authorization(auth)
        receipt = self.escrow.pay(onchain, bytes.fromhex(auth.signature[2:]))
        return int(receipt["blockNumber"])

    async def deliver(self, from_block: int, to_block: int | None = None) -> None:
        """What the listener would do for these blocks: store each escrow event, then signal."""
        end = to_block if to_block is not None else await self.chain.block_number()
        events = await read_escrow_events(
            self.chain,
            self.reader.address,
            chain_id=self.settings.chain_id,
            from_block=from_block,
            to_block=end,
        )
        await self.deliverer.deliver_events(events)

    async def paid(self) -> tuple[BookingInput, WorkflowHandle[Any, BookingView]]:
        """A booking paid on-chain and heard of (PAID in the workflow and Postgres)."""
        booking, handle, auth = await self.authorized()
        block = self.pay(auth)
        await self.deliver(block, block)
        await wait_for(lambda: self.status_of(handle), BookingStatus.PAID)
        return booking, handle

    async def status_of(self, handle: WorkflowHandle[Any, BookingView]) -> BookingStatus:
        view = await handle.query(BookingWorkflow.status)
        return view.status

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    async def db_status(self, booking_id: str) -> str:
        rows = await self.sql(
            "SELECT status FROM bookings WHERE id = :id", id=uuid.UUID(booking_id)
        )
        return str(rows[0][0]) if rows else ""

    async def reconcile(self, **fields: Any) -> ReconcileReport:
        return await self.client.execute_workflow(
            ReconcileWorkflow.run,
            ReconcileInput(reason="test", **fields),
            id=f"reconcile-test-{uuid.uuid4()}",
            task_queue=self.settings.task_queue,
        )

    async def set_checkpoint(self, block: int) -> None:
        """The listener's checkpoint, as if it had stored and signalled everything up to ``block``."""
        await self.sql(
            "INSERT INTO chain_cursor (chain_id, contract_address, last_block_number,"
            " last_block_hash) VALUES (:c, :a, :n, :h) ON CONFLICT (chain_id, contract_address)"
            " DO UPDATE SET last_block_number = :n, last_block_hash = :h",
            c=self.settings.chain_id,
            a=self.reader.address,
            n=block,
            h="0x" + "00" * 32,
        )


async def update(handle: WorkflowHandle[Any, Any], method: Any, request: Any) -> Any:
    """Run a booking update (temporalio's stubs mistype an ``async def`` update's result)."""
    return await handle.execute_update(method, request)


async def wait_for(read: Callable[[], Any], expected: Any) -> None:
    """Poll ``read`` until it returns ``expected``."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await read()
        if last == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"expected {expected!r}, last saw {last!r}")


@pytest.fixture
async def rig(
    temporal_client: Client, database_url: str, fresh_chain: AnvilNode
) -> AsyncIterator[Rig]:
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    r = escrow.roles
    settings = Settings(
        database_url=database_url,
        rpc_urls=[fresh_chain.http_url],
        chain_id=fresh_chain.chain_id,
        escrow_address=escrow.escrow.address,
        signer_private_key=SecretStr(r.signer.private_key),
        operator_private_key=SecretStr(r.operator.private_key),
        confirmations=0,
        task_queue=f"bookings-rc-{uuid.uuid4().hex[:10]}",
        reconcile_received_grace_seconds=0,
        worker_metrics_port=0,
    )
    registry = CollectorRegistry()
    engine = make_engine(database_url, pool_size=2)
    chain = ChainClient.from_settings(settings)
    reader = EscrowReader(chain, escrow.escrow.address)
    deliverer = Deliverer(
        ListenerStore(engine, chain_id=settings.chain_id, contract_address=reader.address),
        TemporalSignalSink(
            temporal_client,
            policy=settings.booking_policy(),
            task_queue=settings.task_queue,
        ),
        ListenerMetrics(CollectorRegistry()),
        concurrency=4,
        cache_size=100,
    )
    try:
        async with (
            activity_dependencies(settings, temporal_client, registry) as activities,
            build_worker(temporal_client, settings, activities),
        ):
            yield Rig(
                client=temporal_client,
                settings=settings,
                escrow=escrow,
                reader=reader,
                chain=chain,
                engine=engine,
                sessions=make_session_factory(engine),
                deliverer=deliverer,
                registry=registry,
            )
    finally:
        await chain.close()
        await engine.dispose()
