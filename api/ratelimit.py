"""Fixed-window counters in Postgres, so every API replica shares them.

A `Quota` is "at most `limit` requests per `window` under `key`"; one request is counted
against all its quotas with one upsert (one round trip), whatever their windows.
"""

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
# VALUES list, and this runs on every authenticated request.
_UPSERT = text(
    "INSERT INTO rate_limit_counters (key, window_start, count)"
    " SELECT k, w, 1 FROM unnest(CAST(:keys AS text[]), CAST(:starts AS timestamptz[])) AS t(k, w)"
    " ON CONFLICT (key, window_start)"
    " DO UPDATE SET count = rate_limit_counters.count + 1"
    " RETURNING key, window_start, count"
)
# Counters of windows that ended this long ago are deleted opportunistically.
KEEP = timedelta(minutes=10)


@dataclass(frozen=True, kw_only=True)
class Quota:
    """At most `limit` requests per `window` counted under `key`."""

    key: str
    limit: int
    window: timedelta = WINDOW


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome of counting one request against one quota."""

    key: str
    count: int
    limit: int
    window: timedelta
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit


def _utcnow() -> datetime:
    return datetime.now(UTC)


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed window holding `now` (aligned to the epoch, so replicas agree)."""
    seconds = int(window.total_seconds())
    epoch = math.floor(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _per(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    return "minute" if seconds == 60 else f"{seconds} seconds"


class RateLimiter:
    """Counts requests per quota with one upsert per request (`INSERT .. ON CONFLICT`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        keep: timedelta = KEEP,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._keep = keep
        self._clock = clock

    async def hit(self, quotas: Sequence[Quota]) -> list[Decision]:
        """Count one request against every quota: one statement, one round trip."""
        now = self._clock()
        starts = {q.key: window_start(now, q.window) for q in quotas}
        # Sorted and distinct: rows are locked in one global order, so concurrent requests
        # sharing a key (the same IP) cannot deadlock.
        keys = sorted(starts)
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(_UPSERT, {"keys": keys, "starts": [starts[k] for k in keys]})
            ).all()
        counts: dict[str, int] = {key: count for key, _, count in rows}
        return [
            Decision(
                key=q.key,
                count=counts[q.key],
                limit=q.limit,
                window=q.window,
                retry_after=math.ceil((starts[q.key] + q.window - now).total_seconds()),
            )
            for q in quotas
        ]

    async def enforce(self, quotas: Sequence[Quota]) -> None:
        """Count the request; raise TooManyRequests (429 + Retry-After) if any quota is over."""
        for decision in await self.hit(quotas):
            if not decision.allowed:
                raise TooManyRequests(
                    f"rate limit of {decision.limit} requests per {_per(decision.window)} exceeded",
                    retry_after=decision.retry_after,
                )

    async def prune(self) -> int:
        """Delete counters of windows long past; returns how many rows went."""
        cutoff = self._clock() - self._keep
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(RateLimitCounter).where(RateLimitCounter.window_start < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["WINDOW", "Decision", "Quota", "RateLimiter", "window_start"]
