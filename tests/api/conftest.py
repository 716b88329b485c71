"""The API against real Postgres (fresh migrated database) and real Temporal, with a worker
running the real BookingWorkflow and DB-backed test activities on a private task queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from api.deps import ApiOptions
from api.main import create_app
from bookme.settings import Settings
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from tests.api.fakes import FakeChain, worker_activities
from tests.api.helpers import JWT_SECRET, serve
from workflows import BookingWorkflow


@pytest.fixture
async def migrated_db(database_url: str) -> str:
    await upgrade_async(database_url)
    return database_url


@pytest.fixture
async def engine(migrated_db: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_db, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


@pytest.fixture
def task_queue() -> str:
    return f"api-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def worker(
    temporal_client: Client, sessions: async_sessionmaker[AsyncSession], task_queue: str
) -> AsyncIterator[FakeChain]:
    chain = FakeChain()
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[BookingWorkflow],
        activities=worker_activities(sessions, chain),
    ):
        yield chain


@dataclass
class ApiFactory:
    """Builds and runs apps against this test's database, Temporal and task queue."""

    settings: Settings
    temporal_client: Client

    def app(self, **overrides: Any) -> FastAPI:
        settings = self.settings.model_copy(update=overrides.pop("settings", {}))
        options = overrides.pop(
            "options",
            ApiOptions(sse_poll_interval_seconds=0.05, sse_keepalive_seconds=0.3),
        )
        overrides.setdefault("temporal_client", self.temporal_client)
        return create_app(settings, registry=CollectorRegistry(), options=options, **overrides)


@pytest.fixture
def api_settings(migrated_db: str, task_queue: str, temporal_client: Client) -> Settings:
    return Settings(
        _env_file=None,
        database_url=migrated_db,
        temporal_address="unused:0",  # the client is passed in
        task_queue=task_queue,
        jwt_secret=SecretStr(JWT_SECRET),
        jwt_algorithm="HS256",
        jwks_url="",
        rate_limit_per_minute=1000,
        signature_rate_limit_per_minute=1000,
        signature_rate_limit_per_ip_per_minute=1000,
        rpc_urls=[],
        escrow_address="",
        deployment_file="/nonexistent/deployment.json",
    )


@pytest.fixture
def factory(api_settings: Settings, temporal_client: Client) -> ApiFactory:
    return ApiFactory(settings=api_settings, temporal_client=temporal_client)


@pytest.fixture
async def client(factory: ApiFactory, worker: FakeChain) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(factory.app()) as client:
        yield client
