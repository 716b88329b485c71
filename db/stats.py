"""Aggregates the worker exports as gauges: bookings by status, the webhook backlog, and how
long confirmed payments take to become PAID. Each is one indexed query, safe to run every minute
from every worker replica (gauges, not counters: replicas report the same value, never a sum)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BlockchainEvent, Booking
from db.statuses import BlockchainEventStatus
from db.webhook_models import DeliveryStatus, WebhookDelivery
from workflows.types import BookingStatus, ChainEventKind

PAYMENT_LATENCY_QUANTILES = (0.5, 0.95, 1.0)


@dataclass(frozen=True, kw_only=True)
class WorkStats:
    """One sample of the aggregates."""

    bookings_by_status: dict[str, int]
    webhook_pending: int
    # Quantile -> seconds from the listener storing a confirmed payment (its receipt seen) to
    # the booking's PAID transition, over the window; empty when nothing was paid in it.
    payment_to_paid_seconds: dict[float, float]


async def work_stats(session: AsyncSession, window: timedelta) -> WorkStats:
    """Count bookings by status and pending webhook deliveries; payment latency quantiles."""
    counts = {status.value: 0 for status in BookingStatus}
    # The service's bookings: the marketplace's own rows may hold statuses of its own.
    rows = await session.execute(
        select(Booking.status, func.count()).where(Booking.managed).group_by(Booking.status)
    )
    for status, count in rows.all():
        counts[str(getattr(status, "value", status))] = int(count)
    pending = await session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING)
    )
    seconds = func.extract("epoch", BlockchainEvent.processed_at - BlockchainEvent.received_at)
    quantiles = await session.execute(
        select(
            *(
                func.percentile_cont(q).within_group(seconds.asc())
                for q in PAYMENT_LATENCY_QUANTILES
            )
        ).where(
            BlockchainEvent.event_type == ChainEventKind.PAYMENT.value,
            BlockchainEvent.status == BlockchainEventStatus.PROCESSED,
            BlockchainEvent.processed_at > func.now() - window,
        )
    )
    values = quantiles.one()
    latency = {
        q: float(v) for q, v in zip(PAYMENT_LATENCY_QUANTILES, values, strict=True) if v is not None
    }
    return WorkStats(
        bookings_by_status=counts,
        webhook_pending=int(pending or 0),
        payment_to_paid_seconds=latency,
    )
