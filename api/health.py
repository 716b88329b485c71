"""Dependency checks behind `GET /health`: each bounded in time, each reported separately."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.schemas import CheckResult, HealthReport
from chain.client import ChainClient
from chain.deploy import LOCAL_CHAIN_IDS
from chain.escrow import EscrowReader
from db.models import ChainCursor

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(kw_only=True)
class HealthChecker:
    """Checks Postgres, Temporal, the chain head, the escrow's pause flag and listener lag."""

    sessions: async_sessionmaker[AsyncSession]
    temporal: Client | None
    chain: ChainClient | None
    escrow: EscrowReader | None
    chain_id: int
    head_stale_after_seconds: float
    confirmations: int
    max_listener_lag_blocks: int
    timeout_seconds: float = 3.0
    clock: Callable[[], float] = time.time

    async def report(self) -> HealthReport:
        """Run every check concurrently; `status` is `ok` only if all pass."""
        head_task = asyncio.ensure_future(self._bounded(self._head()))
        postgres, temporal, (chain, head_number), contract = await asyncio.gather(
            self._guard("postgres", self._postgres()),
            self._guard("temporal", self._temporal()),
            self._chain_with_head(head_task),
            self._guard("contract", self._contract()),
        )
        listener = await self._guard("listener", self._listener(head_number))
        checks = {
            "postgres": postgres,
            "temporal": temporal,
            "chain": chain,
            "contract": contract,
            "listener": listener,
        }
        healthy = all(check.ok for check in checks.values())
        return HealthReport(status="ok" if healthy else "unavailable", checks=checks)

    async def _bounded(self, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, timeout=self.timeout_seconds)

    async def _guard(self, name: str, work: Awaitable[CheckResult]) -> CheckResult:
        try:
            return await self._bounded(work)
        except TimeoutError:
            return CheckResult(ok=False, detail=f"no answer within {self.timeout_seconds:g}s")
        except Exception as exc:  # a health check reports failures, it never raises them
            log.info("health check failed", check=name, error=type(exc).__name__)
            return CheckResult(ok=False, detail=f"{type(exc).__name__}: {_short(exc)}")

    async def _postgres(self) -> CheckResult:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))
        return CheckResult(ok=True, detail="reachable")

    async def _temporal(self) -> CheckResult:
        if self.temporal is None:
            return CheckResult(ok=False, detail="no Temporal client")
        healthy = await self.temporal.service_client.check_health()
        return CheckResult(ok=healthy, detail="serving" if healthy else "not serving")

    async def _head(self) -> tuple[int, int]:
        if self.chain is None:
            raise LookupError("no RPC provider configured")
        block = await self.chain.get_block("latest")
        if block is None:
            raise LookupError("the provider returned no latest block")
        return block.number, block.timestamp

    async def _chain_with_head(
        self, head: asyncio.Future[tuple[int, int]]
    ) -> tuple[CheckResult, int | None]:
        try:
            number, timestamp = await head
        except TimeoutError:
            return CheckResult(ok=False, detail="no head within the timeout"), None
        except Exception as exc:
            return CheckResult(ok=False, detail=f"{type(exc).__name__}: {_short(exc)}"), None
        assert self.chain is not None
        age = max(0.0, self.clock() - timestamp)
        stale = age > self.head_stale_after_seconds
        # A local dev chain mines only when a transaction arrives: an old head is normal there.
        ok = not stale or self.chain_id in LOCAL_CHAIN_IDS
        detail = f"head {number}, {age:.0f}s old" + (" (stale)" if stale else "")
        data: dict[str, str | int | float | bool | None] = {
            "head_block": number,
            "head_age_seconds": round(age, 1),
            "provider": self.chain.current_provider,
        }
        return CheckResult(ok=ok, detail=detail, data=data), number

    async def _contract(self) -> CheckResult:
        if self.escrow is None:
            return CheckResult(ok=False, detail="no escrow address configured")
        paused = await self.escrow.paused()
        return CheckResult(
            ok=not paused,
            detail="paused: new payments are refused" if paused else "accepting payments",
            data={"address": self.escrow.address, "paused": paused},
        )

    async def _listener(self, head: int | None) -> CheckResult:
        if self.escrow is None:
            return CheckResult(ok=False, detail="no escrow address configured")
        async with self.sessions() as session:
            cursor = await session.scalar(
                select(ChainCursor).where(
                    ChainCursor.chain_id == self.chain_id,
                    ChainCursor.contract_address == self.escrow.address,
                )
            )
        if cursor is None:
            return CheckResult(ok=False, detail="the listener has no checkpoint yet")
        data: dict[str, str | int | float | bool | None] = {
            "checkpoint_block": cursor.last_block_number
        }
        if head is None:
            return CheckResult(ok=False, detail="chain head unknown", data=data)
        lag = max(0, head - cursor.last_block_number)
        data["lag_blocks"] = lag
        allowed = self.confirmations + self.max_listener_lag_blocks
        ok = lag <= allowed
        detail = f"{lag} blocks behind" + ("" if ok else f" (more than {allowed})")
        return CheckResult(ok=ok, detail=detail, data=data)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else "failed"
