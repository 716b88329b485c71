"""Leadership: one active listener per (chain, contract) through a Postgres advisory lock.

The lock is session-level on a dedicated connection; when the process dies, Postgres ends
the session and the lock is free for a standby. Writes that must not come from a deposed
leader (the checkpoint) check in their own transaction that the lock is still held by the
lease's backend (`Lease.assert_held`), so a leader that lost its connection cannot move the
checkpoint after a standby took over.

A session lock needs a session: a transaction-pooling proxy (PgBouncer ``pool_mode =
transaction``) hands each transaction to any server backend, so the lock would stay on a
backend this listener no longer talks to. Every attempt asks for the backend pid in two
transactions on the lock's connection and refuses to run (`TransactionPoolerDetected`) when
they differ; the listener's database URL must point at Postgres directly (or a session pool).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger(__name__)


class LeadershipLost(RuntimeError):
    """The advisory lock is no longer held by this listener."""


class TransactionPoolerDetected(RuntimeError):
    """The lock's connection reaches a different backend per transaction: a transaction pooler."""


_PID = text("SELECT pg_backend_pid()")


async def _same_backend(conn: AsyncConnection, pid: int) -> None:
    """Raise TransactionPoolerDetected unless a new transaction still reaches backend ``pid``."""
    again = await conn.scalar(_PID)
    await conn.commit()
    if again != pid:
        raise TransactionPoolerDetected(
            f"Postgres backend changed between transactions ({pid} then {again}): the listener's "
            "database URL goes through a transaction pooler, which breaks its session advisory "
            "lock; point it at Postgres directly (or a session-mode pool)"
        )


def lock_key(chain_id: int, contract_address: str) -> int:
    """A stable signed 64-bit advisory lock key for one (chain, contract)."""
    digest = hashlib.sha256(f"bookme-listener:{chain_id}:{contract_address.lower()}".encode())
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


@dataclass(frozen=True, kw_only=True)
class Lease:
    """Proof of leadership: the backend pid holding the lock and the lock's key."""

    key: int
    pid: int

    async def assert_held(self, conn: AsyncConnection) -> None:
        """Raise LeadershipLost unless the lock is still granted to this lease's backend."""
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        held = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = :pid AND classid = :hi AND objid = :lo AND objsubid = 1"
            ),
            {"pid": self.pid, "hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF},
        )
        if not held:
            raise LeadershipLost(f"advisory lock {self.key} no longer held by backend {self.pid}")


class Leadership:
    """Acquire (waiting as a standby) and hold the listener lock on its own connection."""

    def __init__(self, engine: AsyncEngine, key: int, *, retry_seconds: float = 1.0) -> None:
        self._engine = engine
        self._key = key
        self._retry = retry_seconds
        self._conn: AsyncConnection | None = None
        self.lease: Lease | None = None

    async def try_acquire(self) -> Lease | None:
        """One attempt; the lease if this listener is now the leader."""
        conn = await self._engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
            pid = await conn.scalar(_PID)
            # Session-level lock: end the implicit transaction but keep the session.
            await conn.commit()
            await _same_backend(conn, int(pid))
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return None
        self._conn = conn
        self.lease = Lease(key=self._key, pid=int(pid))
        return self.lease

    async def acquire(self) -> Lease:
        """Wait (hot standby) until the lock is ours."""
        waited = False
        while True:
            try:
                lease = await self.try_acquire()
            except TransactionPoolerDetected:
                raise  # no standby can ever hold the lock this way: refuse to run
            except Exception as exc:  # Postgres down or restarting: keep standing by
                log.warning("listener_lock_unavailable", error=type(exc).__name__)
                lease = None
            if lease is not None:
                log.info("listener_leader", lock_key=self._key, backend_pid=lease.pid)
                return lease
            if not waited:
                log.info("listener_standby", lock_key=self._key)
                waited = True
            await asyncio.sleep(self._retry)

    async def check(self) -> None:
        """Raise LeadershipLost if the lock connection is gone."""
        conn = self._conn
        if conn is None:
            raise LeadershipLost("not the leader")
        try:
            pid = await conn.scalar(_PID)
            await conn.commit()
        except Exception as exc:
            raise LeadershipLost(f"lock connection lost: {type(exc).__name__}") from exc
        if self.lease is not None and pid != self.lease.pid:
            # Reconnected through a pooler, or a pooler put in front since: the lock is elsewhere.
            raise LeadershipLost(f"lock connection now reaches backend {pid}, not {self.lease.pid}")

    async def release(self) -> None:
        """Unlock and close the connection (best effort: closing alone also frees it)."""
        conn, self._conn, self.lease = self._conn, None, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            await conn.commit()
        except Exception as exc:  # the session may already be gone, which frees the lock too
            log.warning("listener_unlock_failed", error=type(exc).__name__)
        finally:
            await conn.close()
