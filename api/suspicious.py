"""Suspicious activity: a user whose authorization requests keep being refused.

More than `threshold` refused payment or cancellation authorizations (a 4xx other than 401 and
429) from one user within `window` is raised once per window: a Prometheus counter, a warning
log line, and a `SuspicionNotifier`. Refusals are counted in Postgres, so every replica adds
to the same count. There is no audit table outside a booking's own trail (which the booking's
parties read), so nothing more is written; the notifier is the seam the marketplace
integration (issue 16) plugs into.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from prometheus_client import Counter

from api.auth import Principal
from api.ratelimit import Quota, RateLimiter

log = structlog.get_logger(__name__)


def is_refusal(status: int) -> bool:
    """A 4xx that answers the request's content: not 401 (no user) and not 429 (already limited)."""
    return 400 <= status < 500 and status not in (401, 429)


@dataclass(frozen=True, kw_only=True)
class SuspiciousActivity:
    """One raised case: who, how many refusals in which window, and the latest one."""

    user_id: str
    role: str
    refusals: int
    window_seconds: int
    route: str
    status: int
    code: str
    booking_id: str | None
    detected_at: datetime


class SuspicionNotifier(Protocol):
    """Where a raised case goes besides the metric and the log (the marketplace, later)."""

    async def notify(self, activity: SuspiciousActivity) -> None: ...


class LoggingNotifier:
    """The default: no channel is configured, so the case is only logged."""

    async def notify(self, activity: SuspiciousActivity) -> None:
        log.info("suspicious activity not forwarded: no notifier", user_id=activity.user_id)


class RefusalMonitor:
    """Counts refused authorization requests per user and raises the ones over the threshold."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        threshold: int,
        window: timedelta,
        notifier: SuspicionNotifier,
        raised: Counter,
    ) -> None:
        self._limiter = limiter
        self._threshold = threshold
        self._window = window
        self._notifier = notifier
        self._raised = raised  # labelled by role

    async def refused(
        self, user: Principal, *, route: str, status: int, code: str, booking_id: str | None
    ) -> SuspiciousActivity | None:
        """Count one refusal; returns the case when this one crosses the threshold."""
        quota = Quota(
            key=f"refused:user:{user.user_id}", limit=self._threshold, window=self._window
        )
        try:
            (decision,) = await self._limiter.hit([quota])
        except Exception as exc:  # counting must never change the refused request's answer
            log.warning("refusal not counted", user_id=user.user_id, error=type(exc).__name__)
            return None
        # Raised once, by the refusal just over the threshold: later ones in the same window
        # would only repeat it.
        if decision.count != self._threshold + 1:
            return None
        activity = SuspiciousActivity(
            user_id=user.user_id,
            role=user.role.value,
            refusals=decision.count,
            window_seconds=int(self._window.total_seconds()),
            route=route,
            status=status,
            code=code,
            booking_id=booking_id,
            detected_at=datetime.now(UTC),
        )
        self._raised.labels(activity.role).inc()
        log.warning(
            "suspicious activity",
            **{**asdict(activity), "detected_at": activity.detected_at.isoformat()},
        )
        await self._notifier.notify(activity)
        return activity


__all__ = [
    "LoggingNotifier",
    "RefusalMonitor",
    "SuspicionNotifier",
    "SuspiciousActivity",
    "is_refusal",
]
