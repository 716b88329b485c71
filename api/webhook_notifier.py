"""Suspicious activity to the marketplace: a `security.suspicious_activity` outbox event.

The RefusalMonitor raises a case once per user and window; this notifier writes it to the
webhook outbox (db/outbox.py), from where the relay delivers it like any event. It never fails
the request that raised it: a write that fails is logged as an error (the metric and the
warning line the monitor wrote stay).
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.suspicious import SuspiciousActivity
from db.outbox import WebhookEventType, enqueue

log = structlog.get_logger(__name__)


def _booking_uuid(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None  # a refused request may name no real booking


class OutboxNotifier:
    """Writes each raised case as a webhook event (once per user and window)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def notify(self, activity: SuspiciousActivity) -> None:
        window = int(activity.detected_at.timestamp()) // max(activity.window_seconds, 1)
        data = {
            "user_id": activity.user_id,
            "role": activity.role,
            "refusals": activity.refusals,
            "window_seconds": activity.window_seconds,
            "route": activity.route,
            "status": activity.status,
            "code": activity.code,
            "detected_at": activity.detected_at.isoformat(),
        }
        try:
            async with self._sessions.begin() as session:
                await enqueue(
                    session,
                    event_type=WebhookEventType.SECURITY_SUSPICIOUS_ACTIVITY,
                    dedupe_key=f"suspicious:{activity.user_id}:{window}",
                    booking_id=_booking_uuid(activity.booking_id),
                    data=data,
                )
        except Exception as exc:
            log.error("suspicious activity not written to the outbox", error=type(exc).__name__)
