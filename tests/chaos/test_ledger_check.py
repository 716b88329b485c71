"""The chaos run's operator-ledger check after a Postgres restore: the nonces sent between the
backup and the restore are gone from the ledger (the chain has them, the restored table cannot),
and only their absence is forgiven: a gap outside that window, or a reverted transaction inside
it, is still a violation.

A production-shape run with the restore fault reported those forgotten nonces as ledger gaps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.chaos.shape_checks import operator_ledger
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from db.tx_ledger_models import LedgerTransaction

pytestmark = pytest.mark.integration

OPERATOR = "0x" + "ab" * 20


class _Chain:
    """The operator's mined count is all the check asks of the chain."""

    def __init__(self, mined: int) -> None:
        self.mined = mined

    async def get_transaction_count(self, address: str, block: str = "latest") -> int:
        assert address == OPERATOR
        return self.mined


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _record(engine: AsyncEngine, outcomes: dict[int, str]) -> None:
    async with make_session_factory(engine)() as session, session.begin():
        for nonce, outcome in outcomes.items():
            session.add(
                LedgerTransaction(
                    chain_id=31337, sender=OPERATOR, nonce=nonce, intent=f"complete:{nonce}",
                    to_address=OPERATOR, data=b"", value=0, gas=21000, max_fee_per_gas=1,
                    max_priority_fee_per_gas=1, tx_hashes=[f"0x{nonce:064x}"], raw_tx=b"\x01",
                    outcome=outcome,
                )
            )  # fmt: skip


async def test_nonces_a_restore_forgot_are_forgiven_and_nothing_else(engine: AsyncEngine):
    # Nonces 0-1 were in the backup, 2-3 were sent after it, 4 after the restore; 5 mined.
    await _record(engine, {0: "succeeded", 1: "succeeded", 4: "succeeded"})
    chain = _Chain(mined=5)

    blind = await operator_ledger(engine, chain, OPERATOR)  # type: ignore[arg-type]
    assert blind == [
        "nonce 2 mined but not in the ledger (a gap)",
        "nonce 3 mined but not in the ledger (a gap)",
    ]
    forgiven = await operator_ledger(
        engine,
        chain,  # type: ignore[arg-type]
        OPERATOR,
        forgotten=(range(2, 4),),
    )
    assert forgiven == []
    # A window too narrow forgives only what it covers.
    narrow = await operator_ledger(
        engine,
        chain,  # type: ignore[arg-type]
        OPERATOR,
        forgotten=(range(2, 3),),
    )
    assert narrow == ["nonce 3 mined but not in the ledger (a gap)"]


async def test_a_revert_in_the_window_is_still_a_violation(engine: AsyncEngine):
    await _record(engine, {0: "succeeded", 1: "reverted", 3: "succeeded"})
    problems = await operator_ledger(
        engine,
        _Chain(mined=4),  # type: ignore[arg-type]
        OPERATOR,
        forgotten=(range(1, 3),),
    )
    assert problems == ["nonce 1 (complete:1) reverted"]
