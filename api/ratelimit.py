"""Fixed-window rate limits counted in Postgres, so every API replica shares them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import TooManyRequests
from db.models import RateLimitCounter

WINDOW = timedelta(minutes=1)
# Text, not a multi-row insert() construct: SQLAlchemy cannot cache the compiled form of a
# VALUES list, and this runs on every signature request.
_UPSERT = text(
    "INSERT INTO rate_limit_counters (key, window_start, count)"
    " SELECT k, :window_start, 1 FROM unnest(CAST(:keys AS text[])) AS k"
    " ON CONFLICT (key, window_start)"
    " DO UPDATE SET count = rate_limit_counters.count + 1"
    " RETURNING key, count"
)
KEEP_WINDOWS = 5  # older counters are deleted opportunistically


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome of counting one request against one key."""

    key: str
    count: int
    limit: int
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RateLimiter:
    """Counts requests per key and minute with one upsert per key (`INSERT .. ON CONFLICT`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        limit_per_minute: int,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._limit = limit_per_minute
        self._clock = clock

    async def hit(self, keys: Sequence[str], *, limit: int | None = None) -> list[Decision]:
        """Count one request against every key: one upsert statement, one round trip."""
        now = self._clock()
        window_start = now.replace(second=0, microsecond=0)
        retry_after = math.ceil((window_start + WINDOW - now).total_seconds())
        # Sorted and distinct: rows are locked in one global order, so concurrent requests
        # sharing a key (the same IP) cannot deadlock.
        unique = sorted(set(keys))
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(_UPSERT, {"keys": unique, "window_start": window_start})
            ).all()
        counts: dict[str, int] = {key: count for key, count in rows}
        return [
            Decision(
                key=key, count=counts[key], limit=limit or self._limit, retry_after=retry_after
            )
            for key in keys
        ]

    async def enforce(self, keys: Sequence[str], *, limit: int | None = None) -> None:
        """Count the request; raise TooManyRequests (429 + Retry-After) if any key is over.

        ``limit`` overrides the default per-minute limit for this kind of request.
        """
        for decision in await self.hit(keys, limit=limit):
            if not decision.allowed:
                raise TooManyRequests(
                    f"rate limit of {decision.limit} requests per minute exceeded",
                    retry_after=decision.retry_after,
                )

    async def prune(self) -> int:
        """Delete counters of windows long past; returns how many rows went."""
        cutoff = self._clock() - WINDOW * KEEP_WINDOWS
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(RateLimitCounter).where(RateLimitCounter.window_start < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["WINDOW", "Decision", "RateLimiter"]
