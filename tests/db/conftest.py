"""Fixtures for the schema tests: a migrated database and a session factory on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """A fresh database upgraded to head."""
    await upgrade_async(database_url)
    return database_url


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(migrated_url, pool_size=2)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()
