"""A migrated database, a real HTTP receiver and a dispatcher with short backoff per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import BookingStore
from activities.webhooks import DeliveryConfig, WebhookDispatcher, WebhookMetrics
from bookme.webhook_settings import DEV_WEBHOOK_ENCRYPTION_KEY
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from db.webhook_endpoints import SecretBox, create_endpoint
from tests.webhooks.receiver import Receiver

ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
# Seconds, not minutes: the tests wait for real backoff.
FAST = DeliveryConfig(
    timeout_seconds=2.0,
    retry_initial_seconds=0.05,
    retry_max_seconds=0.2,
    retry_horizon_seconds=60.0,
)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=4)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(DEV_WEBHOOK_ENCRYPTION_KEY)


@pytest.fixture
def store(sessions) -> BookingStore:
    return BookingStore(sessions, escrow_address=ESCROW)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def dispatcher(sessions, box, registry) -> WebhookDispatcher:
    return WebhookDispatcher(sessions, box, WebhookMetrics(registry), FAST)


@pytest.fixture
def add_endpoint(sessions, box) -> Callable[[str], Awaitable[tuple[str, str]]]:
    """Register an endpoint; returns (endpoint id, its secret)."""

    async def add(url: str) -> tuple[str, str]:
        async with sessions.begin() as session:
            endpoint_id, secret = await create_endpoint(session, box, url=url)
        return str(endpoint_id), secret

    return add
