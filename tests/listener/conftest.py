"""Fixtures for listener tests: a migrated database, a deployed escrow, listener factories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.chaos.rpc_proxy import FaultProxy
from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from db.engine import make_engine
from db.migrate import upgrade_async
from listener.config import ListenerConfig
from listener.service import Listener
from listener.sightings import SightingSink
from listener.sink import SignalSink
from tests.listener.driver import EscrowDriver


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=5)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def driver(fresh_chain: AnvilNode) -> AsyncIterator[EscrowDriver]:
    driver = await EscrowDriver.deploy(fresh_chain)
    try:
        yield driver
    finally:
        await driver.close()


@pytest.fixture
async def chain_client(fresh_chain: AnvilNode) -> AsyncIterator[ChainClient]:
    async with ChainClient([fresh_chain.http_url], expected_chain_id=fresh_chain.chain_id) as c:
        yield c


MakeListener = Callable[..., Listener]


@pytest.fixture
def make_listener(
    engine: AsyncEngine, chain_client: ChainClient, driver: EscrowDriver
) -> MakeListener:
    """A fresh Listener (a "restarted process") over the same database and chain."""

    def make(
        sink: SignalSink,
        *,
        client: ChainClient | None = None,
        contract: str | None = None,
        sightings: SightingSink | None = None,
        **overrides: Any,
    ) -> Listener:
        options: dict[str, Any] = {
            "chain_id": driver.node.chain_id,
            "contract_address": contract or driver.escrow,
            "confirmations": 0,
            "start_block": driver.deployment.block_number,
            "poll_interval": 0.05,
            "max_block_range": 2000,
            "head_stale_after": 30.0,
            "reorg_confirm_delay": 0.01,
            "standby_retry": 0.1,
            "retry_initial": 0.05,
        }
        options.update(overrides)
        return Listener(
            config=ListenerConfig(**options),
            client=client or chain_client,
            engine=engine,
            sink=sink,
            sightings=sightings,
        )

    return make


async def insert_booking(engine: AsyncEngine, booking_uuid: str, chain_booking_id: str) -> None:
    """A minimal booking row whose chain booking id the listener can resolve."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bookings (id, service_id, customer_id, provider_id, customer_wallet,"
                " provider_wallet, amount_units, scheduled_at, platform_fee_bps, inviter_fee_bps,"
                " blockchain_booking_id, status)"
                " VALUES (:id, 'svc', 'cust', 'prov', :wallet, :wallet, 10000000, :at, 1000, 0,"
                " :cbid, 'PENDING_PAYMENT')"
            ),
            {
                "id": uuid.UUID(booking_uuid),
                "wallet": "0x" + "11" * 20,
                "at": datetime.now(UTC),
                "cbid": chain_booking_id,
            },
        )


async def event_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT tx_hash, log_index, block_number, block_hash, status, booking_id,"
                " chain_booking_id, event_type FROM blockchain_events ORDER BY block_number,"
                " log_index"
            )
        )
        return list(result)


async def cursor_row(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT last_block_number, last_block_hash FROM chain_cursor"))
        ).first()


@pytest.fixture
async def proxy(fresh_chain: AnvilNode) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the test anvil."""
    proxy = FaultProxy(fresh_chain.http_url, fresh_chain.ws_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
