"""A migrated database per test, and the store and signer built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import BookingStore, Signer
from chain.eip712 import Eip712Domain
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async

ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
# anvil's well-known account #0: a published test key, fine for tests only.
SIGNER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SIGNER_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=2)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def store(sessions) -> BookingStore:
    return BookingStore(sessions, escrow_address=ESCROW)


@pytest.fixture
def signer(sessions) -> Signer:
    return Signer(
        sessions,
        signer_key=SecretStr(SIGNER_KEY),
        domain=Eip712Domain(chain_id=31337, verifying_contract=ESCROW),
    )
