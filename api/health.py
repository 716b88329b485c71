"""Dependency checks behind `/health` and `/health/ready`: each bounded in time, each reported
separately, each with a short code (exception text never reaches a response).

Two tiers decide what a failure means (`api/health_status.py`): a CRITICAL check failing
(Postgres, Temporal) makes the process unable to serve, so `/health/ready` and `/health` answer
503; any other failing check (chain head, paused contract, lagging listener, low operator gas,
the world checks plugged in as `HealthComponent`s) makes it degraded: 200, and an alert.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.health_status import HealthComponent, Tier, failed, overall_status, passed
from api.schemas import CheckResult, HealthReport
from chain.client import ChainClient
from chain.deploy import LOCAL_CHAIN_IDS
from chain.escrow import EscrowReader
from db.models import ChainCursor

log = structlog.get_logger(__name__)
T = TypeVar("T")
Data = dict[str, str | int | float | bool | None]


@dataclass(kw_only=True)
class HealthChecker:
    """Postgres, Temporal, the chain head, the escrow's pause flag, listener lag, operator gas,
    and whatever `components` are plugged in."""

    sessions: async_sessionmaker[AsyncSession]
    temporal: Client | None
    chain: ChainClient | None
    escrow: EscrowReader | None
    chain_id: int
    head_stale_after_seconds: float
    confirmations: int
    max_listener_lag_blocks: int
    operator_min_balance_wei: int = 0
    components: Sequence[HealthComponent] = field(default_factory=tuple)
    timeout_seconds: float = 3.0
    clock: Callable[[], float] = time.time

    async def ready(self) -> HealthReport:
        """Only what serving needs: Postgres and Temporal."""
        postgres, temporal = await asyncio.gather(
            self._guard("postgres", Tier.CRITICAL, self._postgres()),
            self._guard("temporal", Tier.CRITICAL, self._temporal()),
        )
        checks = {"postgres": postgres, "temporal": temporal}
        return HealthReport(status=overall_status(checks), checks=checks)

    async def report(self) -> HealthReport:
        """Run every check concurrently; `status` is ok, degraded or unavailable."""
        head_task = asyncio.ensure_future(self._bounded(self._head()))
        degrading = Tier.DEGRADING
        plugged = asyncio.gather(*(self._guard(c.name, c.tier, c.check()) for c in self.components))
        postgres, temporal, (chain, head_number), contract, gas = await asyncio.gather(
            self._guard("postgres", Tier.CRITICAL, self._postgres()),
            self._guard("temporal", Tier.CRITICAL, self._temporal()),
            self._chain_with_head(head_task),
            self._guard("contract", degrading, self._contract()),
            self._guard("operator_gas", degrading, self._operator_gas()),
        )
        listener = await self._guard("listener", degrading, self._listener(head_number))
        checks = {
            "postgres": postgres,
            "temporal": temporal,
            "chain": chain,
            "contract": contract,
            "listener": listener,
            "operator_gas": gas,
        }
        for component, result in zip(self.components, await plugged, strict=True):
            checks[component.name] = result
        return HealthReport(status=overall_status(checks), checks=checks)

    async def _bounded(self, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, timeout=self.timeout_seconds)

    async def _guard(self, name: str, tier: Tier, work: Awaitable[CheckResult]) -> CheckResult:
        """The check's result with its tier; a timeout or an exception is a code, never text."""
        try:
            result = await self._bounded(work)
        except TimeoutError:
            result = failed("timeout", f"no answer within {self.timeout_seconds:g}s")
        except Exception as exc:  # a health check reports failures, it never raises them
            log.info("health_check_failed", check=name, error=type(exc).__name__)
            result = failed("error", "the check failed (see the service's logs)")
        return result.model_copy(update={"critical": tier is Tier.CRITICAL})

    async def _postgres(self) -> CheckResult:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))
        return passed("reachable")

    async def _temporal(self) -> CheckResult:
        if self.temporal is None:
            return failed("not_configured", "no Temporal client")
        healthy = await self.temporal.service_client.check_health()
        return passed("serving") if healthy else failed("not_serving", "not serving")

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
        if self.chain is None:
            head.cancel()
            return failed("not_configured", "no RPC provider configured"), None
        try:
            number, timestamp = await head
        except TimeoutError:
            return failed("timeout", "no head within the timeout"), None
        except Exception as exc:
            log.info("health_check_failed", check="chain", error=type(exc).__name__)
            return failed("unreachable", "no provider answered"), None
        age = max(0.0, self.clock() - timestamp)
        stale = age > self.head_stale_after_seconds
        data: Data = {
            "head_block": number,
            "head_age_seconds": round(age, 1),
            "provider": self.chain.current_provider,
        }
        detail = f"head {number}, {age:.0f}s old"
        # A local dev chain mines only when a transaction arrives: an old head is normal there.
        if stale and self.chain_id not in LOCAL_CHAIN_IDS:
            return failed("stale_head", detail + " (stale)", data=data), number
        return passed(detail, data=data), number

    async def _contract(self) -> CheckResult:
        if self.escrow is None:
            return failed("not_configured", "no escrow address configured")
        paused = await self.escrow.paused()
        data: Data = {"address": self.escrow.address, "paused": paused}
        if paused:
            return failed("paused", "paused: new payments are refused", data=data)
        return passed("accepting payments", data=data)

    async def _operator_gas(self) -> CheckResult:
        """The operator's ETH for gas (auto-complete, refunds): low is degraded, not down."""
        if self.escrow is None or self.chain is None:
            return failed("not_configured", "no escrow address or RPC provider configured")
        operator = await self.escrow.operator()
        balance = await self.chain.get_balance(operator)
        # Strings: wei overflow a JSON number's exact range in most clients.
        data: Data = {
            "address": operator,
            "balance_wei": str(balance),
            "min_balance_wei": str(self.operator_min_balance_wei),
        }
        if balance < self.operator_min_balance_wei:
            return failed("low_balance", "below the minimum: fund the operator", data=data)
        return passed("enough for gas", data=data)

    async def _listener(self, head: int | None) -> CheckResult:
        if self.escrow is None:
            return failed("not_configured", "no escrow address configured")
        async with self.sessions() as session:
            cursor = await session.scalar(
                select(ChainCursor).where(
                    ChainCursor.chain_id == self.chain_id,
                    ChainCursor.contract_address == self.escrow.address,
                )
            )
        if cursor is None:
            return failed("no_checkpoint", "the listener has no checkpoint yet")
        data: Data = {"checkpoint_block": cursor.last_block_number}
        if head is None:
            return failed("head_unknown", "chain head unknown", data=data)
        lag = max(0, head - cursor.last_block_number)
        data["lag_blocks"] = lag
        allowed = self.confirmations + self.max_listener_lag_blocks
        if lag > allowed:
            return failed("lagging", f"{lag} blocks behind (more than {allowed})", data=data)
        return passed(f"{lag} blocks behind", data=data)
