"""Every process checks the chain against its settings at start, then every few minutes.

The questions and the comparison are chain/world_check.py's; this module applies the policy:

- at start, a difference refuses to start in production (`WorldCheckFailed`, one line such as
  ``chain check failed: signing domain version is "2", settings say "1"``) and is a warning
  elsewhere; a chain that does not answer at start is an error log and a degraded health report,
  not a refusal: a provider outage must not keep every replica (the API's too) down, and the
  background check verifies the chain as soon as it answers (a difference found then is
  degraded and alerting, never silent);
- afterwards, every ``BOOKME_WORLD_CHECK_INTERVAL_SECONDS``, the check runs again: each question's
  answer is the gauge ``bookme_world_check_ok{check=...}`` (1 agrees, 0 differs) and
  `WorldWatch.status()` is what the detailed health report reads (`WorldStatus.degraded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from prometheus_client import CollectorRegistry, Gauge

from bookme.settings import Environment, Settings, SettingsError
from chain.client import ChainClient
from chain.errors import ChainError
from chain.escrow import FeePolicy
from chain.keys import TransactionKey
from chain.world_check import (
    Difference,
    ExpectedWorld,
    WorldCheck,
    check_world,
    failure_line,
    unanswered,
)

log = structlog.get_logger(__name__)


class WorldCheckFailed(SettingsError):
    """Production refuses to start: the chain is not the one the settings describe."""


@dataclass(frozen=True, kw_only=True)
class WorldStatus:
    """The last check's outcome: what `/health` reads (never secrets, never exception text)."""

    checked_at: float | None = None  # unix time of the last completed check; None = never
    differences: tuple[Difference, ...] = ()
    # Why the last attempt could not run (chain unreachable), by error type only.
    error: str | None = None
    failing: frozenset[WorldCheck] = field(default_factory=frozenset)

    @property
    def ok(self) -> bool:
        """The last completed check found no difference."""
        return self.checked_at is not None and not self.differences

    @property
    def degraded(self) -> bool:
        """The chain differs from the settings, or it was never verified."""
        return not self.ok

    @property
    def summary(self) -> str:
        if self.differences:
            return failure_line(self.differences)
        if self.checked_at is None:
            return f"chain not verified yet ({self.error or 'no check ran'})"
        return "chain matches settings"


def expected_world(settings: Settings, escrow_address: str) -> ExpectedWorld:
    """The chain these settings describe; a role is checked only where its key is configured."""
    signer = settings.signer_key()
    operator = settings.operator_key()
    return ExpectedWorld(
        chain_id=settings.chain_id,
        escrow=escrow_address,
        fee_policy=FeePolicy(
            platform_fee_bps=settings.platform_fee_bps,
            platform_fee_with_inviter_bps=settings.platform_fee_with_inviter_bps,
            inviter_fee_bps=settings.inviter_fee_bps,
        ),
        usdc=settings.usdc_address or None,
        signer=TransactionKey(signer).address if signer is not None else None,
        operator=TransactionKey(operator).address if operator is not None else None,
    )


class WorldWatch:
    """Runs the check for one process and remembers the outcome."""

    def __init__(
        self,
        client: ChainClient,
        expected: ExpectedWorld,
        *,
        registry: CollectorRegistry,
        process: str,
    ) -> None:
        self._client = client
        self._expected = expected
        self.process = process
        self._status = WorldStatus()
        self._gauge = Gauge(
            "bookme_world_check_ok",
            "1 when the chain agrees with the settings on this check, 0 when it differs.",
            ["check"],
            registry=registry,
        )

    def status(self) -> WorldStatus:
        """The last outcome (cheap: no I/O)."""
        return self._status

    async def check(self) -> WorldStatus:
        """Check now; an unreachable chain keeps the last answers and records why."""
        try:
            differences = await check_world(self._client, self._expected)
        except (ChainError, OSError, TimeoutError) as exc:
            self._status = WorldStatus(
                checked_at=self._status.checked_at,
                differences=self._status.differences,
                failing=self._status.failing,
                error=f"chain unreachable ({type(exc).__name__})",
            )
            log.warning("world_check_unreachable", process=self.process, error=type(exc).__name__)
            return self._status
        failing = frozenset(d.check for d in differences)
        # Unanswered (on another chain, no escrow at the address) is not agreeing either.
        not_ok = failing | unanswered(differences)
        for check in WorldCheck:
            self._gauge.labels(check=check.value).set(0 if check in not_ok else 1)
        self._status = WorldStatus(
            checked_at=time.time(), differences=tuple(differences), failing=failing
        )
        if differences:
            log.error("world_check_failed", process=self.process, problem=self._status.summary)
        return self._status

    async def run_every(self, interval_seconds: float) -> None:
        """Re-check forever (cancel to stop); a failing round never ends the loop."""
        while True:
            await asyncio.sleep(interval_seconds)
            await self.check()


async def check_at_start(watch: WorldWatch, environment: Environment) -> WorldStatus:
    """The start check: production refuses a proven difference; anything else is logged."""
    status = await watch.check()
    if status.ok:
        log.info("world_check_ok", process=watch.process)
        return status
    if not status.differences:
        log.error("world_check_unverified", process=watch.process, problem=status.summary)
        return status
    if environment is Environment.PRODUCTION:
        raise WorldCheckFailed(status.summary)
    log.warning("world_check_mismatch_tolerated", problem=status.summary, environment=environment)
    return status


@asynccontextmanager
async def watch_world(
    settings: Settings,
    client: ChainClient,
    escrow_address: str,
    *,
    registry: CollectorRegistry,
    process: str,
) -> AsyncIterator[WorldWatch]:
    """Check at start (refusing in production), then re-check in the background until exit."""
    watch = WorldWatch(
        client, expected_world(settings, escrow_address), registry=registry, process=process
    )
    await check_at_start(watch, settings.environment)
    task = None
    if settings.world_check_interval_seconds:
        task = asyncio.create_task(
            watch.run_every(settings.world_check_interval_seconds), name="world-check"
        )
    try:
        yield watch
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def watch_world_own_client(
    settings: Settings,
    rpc_urls: list[str],
    escrow_address: str,
    *,
    registry: CollectorRegistry,
    process: str,
) -> AsyncIterator[WorldWatch]:
    """`watch_world` over a chain client of its own (the worker's live inside its activities)."""
    # Its own RPC metrics stay private: the process's client already exports the same names.
    client = ChainClient.from_settings(settings.model_copy(update={"rpc_urls": rpc_urls}))
    try:
        async with watch_world(
            settings, client, escrow_address, registry=registry, process=process
        ) as watch:
            yield watch
    finally:
        await client.close()
