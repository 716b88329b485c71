"""One active listener per (chain, contract): advisory lock, hot standby, fencing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from listener.lock import LeadershipLost, Lease, lock_key
from listener.store import BlockRef
from tests.listener.conftest import MakeListener, cursor_row
from tests.listener.driver import EscrowDriver
from tests.listener.fakes import RecordingSink

pytestmark = pytest.mark.integration


async def _until(check, limit: float = 30.0) -> None:
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def test_standby_delivers_nothing_until_the_leader_dies_then_takes_over(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    first_sink, second_sink = RecordingSink(), RecordingSink()
    first, second = make_listener(first_sink), make_listener(second_sink)
    first_task = asyncio.create_task(first.run())
    await _until(lambda: _is(first.metrics.leader._value.get() == 1))
    second_task = asyncio.create_task(second.run())
    try:
        early = await driver.pay_many(3)
        head = await driver.head()
        await _until(lambda: _cursor_at(engine, head))
        assert {e.identity.tx_hash for e in first_sink.applied.values()} == {
            p.tx_hash for p in early
        }
        assert second_sink.calls == []
        assert second.metrics.leader._value.get() == 0

        # The leader's process dies: Postgres ends its session (and with it the lock).
        lease = first.leadership.lease
        assert lease is not None
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lease.pid})
        first_task.cancel()
        await asyncio.gather(first_task, return_exceptions=True)

        late = await driver.pay_many(2)
        head = await driver.head()
        await _until(lambda: _cursor_at(engine, head))
    finally:
        for task in (first_task, second_task):
            task.cancel()
        await asyncio.gather(first_task, second_task, return_exceptions=True)

    assert {e.identity.tx_hash for e in second_sink.applied.values()} == {p.tx_hash for p in late}
    # The standby resumed from the leader's checkpoint: nothing was signalled twice.
    assert not set(first_sink.keys("orphan")) & set(second_sink.keys("orphan"))


async def test_a_deposed_leader_cannot_move_the_checkpoint(
    driver: EscrowDriver, engine, make_listener: MakeListener
):
    listener = make_listener(RecordingSink())
    lease = await listener.leadership.try_acquire()
    assert lease is not None
    rival = make_listener(RecordingSink())
    assert await rival.leadership.try_acquire() is None

    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lease.pid})
    with pytest.raises(LeadershipLost):
        await listener.leadership.check()
    block = BlockRef(number=1, hash="0x" + "ab" * 32)
    with pytest.raises(LeadershipLost):
        await listener.store.advance(block, [], keep=10, lease=lease)
    assert await cursor_row(engine) is None

    # The rival takes the lock; an impostor lease with the right key but wrong backend fails.
    assert await rival.leadership.try_acquire() is not None
    impostor = Lease(key=lock_key(driver.node.chain_id, driver.escrow), pid=lease.pid)
    with pytest.raises(LeadershipLost):
        await listener.store.advance(block, [], keep=10, lease=impostor)
    await rival.leadership.release()
    await listener.leadership.release()


async def _is(value: bool) -> bool:
    return value


async def _cursor_at(engine, block: int) -> bool:
    row = await cursor_row(engine)
    return row is not None and row.last_block_number >= block
