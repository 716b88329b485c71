"""The marketplace's own rows in an adopted `bookings` table, read without the ORM's enum.

The service manages the rows a workflow owns (`Booking.managed`). The other rows belong to
the marketplace's app and may hold statuses `BookingStatus` does not know; mapping them to
`Booking` would fail, so they are read here as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, func, not_, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from db.models import Booking
from db.statuses import BookingStatus

# The status column as stored, without the enum's decoding.
RAW_STATUS = type_coerce(Booking.status, Text)
UNKNOWN_STATUS = or_(RAW_STATUS.is_(None), RAW_STATUS.not_in([s.value for s in BookingStatus]))


@dataclass(frozen=True, kw_only=True)
class StatusCount:
    """How many rows hold one status this service does not use (None: no status)."""

    status: str | None
    rows: int
    first_created_at: datetime | None
    last_created_at: datetime | None


async def unknown_statuses(session: AsyncSession) -> list[StatusCount]:
    """Every status in `bookings` that is not one of ours, most frequent first.

    Only the marketplace's rows can hold one (a CHECK holds the service's rows to ours).
    Equivalent SQL, for psql: ``SELECT status, count(*), min(created_at), max(created_at)
    FROM bookings WHERE status IS NULL OR status NOT IN (<our statuses>) GROUP BY status``.
    """
    rows = await session.execute(
        select(RAW_STATUS, func.count(), func.min(Booking.created_at), func.max(Booking.created_at))
        .where(UNKNOWN_STATUS)
        .group_by(RAW_STATUS)
        .order_by(func.count().desc(), RAW_STATUS)
    )
    return [
        StatusCount(status=status, rows=int(n), first_created_at=first, last_created_at=last)
        for status, n, first, last in rows
    ]


async def unmanaged_status(session: AsyncSession, where: ColumnElement[bool]) -> str | None:
    """The raw status of a marketplace row matching ``where`` ("" when it has none), None
    when no unmanaged row matches."""
    status = (
        await session.execute(select(RAW_STATUS).where(where, not_(Booking.managed)).limit(1))
    ).first()
    if status is None:
        return None
    return status[0] or ""
