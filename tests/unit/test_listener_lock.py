"""The listener refuses to lead through a transaction pooler (its session lock would be lost).

Fakes stand in for the engine: a pooler in transaction mode cannot be started here, and what it
does to a connection (another backend per transaction) is all the check looks at.
"""

from __future__ import annotations

from typing import Any

import pytest

from listener.lock import Leadership, LeadershipLost, TransactionPoolerDetected


class FakeConnection:
    """Answers pg_try_advisory_lock with True and pg_backend_pid from ``pids``, one per
    transaction (a pooler in transaction mode hands each transaction to any backend)."""

    def __init__(self, pids: list[int]) -> None:
        self._pids = pids
        self.closed = False

    async def scalar(self, statement: Any, params: Any = None) -> object:
        if "pg_try_advisory_lock" in str(statement):
            return True
        return self._pids[0]

    async def commit(self) -> None:
        if len(self._pids) > 1:
            self._pids.pop(0)

    async def execute(self, statement: Any, params: Any = None) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class FakeEngine:
    def __init__(self, pids: list[int]) -> None:
        self.connection = FakeConnection(pids)

    async def connect(self) -> FakeConnection:
        return self.connection


async def test_a_direct_connection_leads():
    leadership = Leadership(FakeEngine([41, 41, 41]), key=7)  # type: ignore[arg-type]
    lease = await leadership.acquire()
    assert lease.pid == 41
    await leadership.check()


async def test_a_backend_that_changes_between_transactions_is_refused_at_start():
    engine = FakeEngine([41, 52])
    leadership = Leadership(engine, key=7, retry_seconds=0.01)  # type: ignore[arg-type]
    with pytest.raises(TransactionPoolerDetected, match="transaction pooler"):
        await leadership.acquire()
    assert engine.connection.closed


async def test_a_leader_whose_connection_moves_to_another_backend_loses_leadership():
    engine = FakeEngine([41, 41, 63])
    leadership = Leadership(engine, key=7)  # type: ignore[arg-type]
    await leadership.acquire()
    with pytest.raises(LeadershipLost, match="backend 63"):
        await leadership.check()
