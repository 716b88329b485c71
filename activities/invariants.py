"""The money invariants of issue #7, usable from the reconcile activity, the chaos bench and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.escrow import EscrowReader


@dataclass(frozen=True, kw_only=True)
class InvariantResult:
    """One invariant: 0 violations means it holds; details name the difference in base units."""

    violations: int
    details: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.violations == 0


@dataclass(frozen=True, kw_only=True)
class InvariantReport:
    results: dict[str, InvariantResult]

    @property
    def holds(self) -> bool:
        return all(result.holds for result in self.results.values())

    def counts(self) -> dict[str, int]:
        return {name: result.violations for name, result in self.results.items()}


async def check_invariants(
    sessions: async_sessionmaker[AsyncSession],
    escrow: EscrowReader,
    *,
    received_grace: timedelta,
) -> InvariantReport:
    """Check every money invariant against Postgres and the contract."""
    raise NotImplementedError
