"""Reads of bookings and their audit trail from Postgres (the workflow writes them, never the API)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import InvalidField
from db.models import Booking, BookingEvent


@dataclass(frozen=True, kw_only=True)
class BookingFilter:
    """Equality filters of a booking listing (wallets compared case-insensitively)."""

    status: str | None = None
    customer_wallet: str | None = None
    provider_wallet: str | None = None
    # Bookings where any of these is the customer's or the provider's wallet (a user's own).
    party_wallets: tuple[str, ...] | None = None


def encode_cursor(created_at: datetime, booking_id: uuid.UUID) -> str:
    """Opaque keyset cursor pointing just after (`created_at`, `id`)."""
    raw = f"{created_at.isoformat()}|{booking_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Inverse of `encode_cursor`; a tampered cursor is a 422 naming `query.cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, ident = raw.partition("|")
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return created_at, uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidField("query.cursor", "not a cursor this API issued") from None


async def get_booking(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    """The booking row, or None; None too for a marketplace row the service does not manage
    (no workflow owns it, and its status may be one the API does not know)."""
    return await session.scalar(select(Booking).where(Booking.id == booking_id, Booking.managed))


async def list_bookings(
    session: AsyncSession, flt: BookingFilter, *, limit: int, cursor: str | None
) -> tuple[Sequence[Booking], str | None]:
    """One page, newest first, by keyset on (`created_at`, `id`); returns rows and next cursor.

    Only the rows the service manages: the marketplace's own rows are not its bookings.
    """
    stmt = select(Booking).where(Booking.managed)
    if flt.status is not None:
        stmt = stmt.where(Booking.status == flt.status)
    # Wallets are stored checksummed by the writer; compare exactly so the indexes serve.
    if flt.customer_wallet is not None:
        stmt = stmt.where(Booking.customer_wallet == flt.customer_wallet)
    if flt.provider_wallet is not None:
        stmt = stmt.where(Booking.provider_wallet == flt.provider_wallet)
    if flt.party_wallets is not None:
        wallets = list(flt.party_wallets)
        stmt = stmt.where(
            or_(Booking.customer_wallet.in_(wallets), Booking.provider_wallet.in_(wallets))
        )
    if cursor is not None:
        created_at, after_id = decode_cursor(cursor)
        stmt = stmt.where(tuple_(Booking.created_at, Booking.id) < tuple_(created_at, after_id))
    stmt = stmt.order_by(Booking.created_at.desc(), Booking.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    return page, encode_cursor(last.created_at, last.id)


async def list_events(
    session: AsyncSession, booking_id: uuid.UUID, *, after: int, limit: int
) -> Sequence[BookingEvent]:
    """Audit rows of one booking with id > `after`, oldest first."""
    stmt = (
        select(BookingEvent)
        .where(BookingEvent.booking_id == booking_id, BookingEvent.id > after)
        .order_by(BookingEvent.id)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()
