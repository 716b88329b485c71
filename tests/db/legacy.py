"""A legacy `bookings` table as the seeds describe it, filled with a few hundred rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from db.engine import make_engine

LEGACY_DDL = (
    """
    CREATE TABLE bookings (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        service_id varchar(64) NOT NULL,
        customer_id varchar(64) NOT NULL,
        provider_id varchar(64),
        scheduled_at timestamptz NOT NULL,
        amount DECIMAL NOT NULL,
        status varchar(20) NOT NULL DEFAULT 'PENDING_PAYMENT',
        notes text,
        created_at timestamp NOT NULL DEFAULT now(),
        blockchain_booking_id VARCHAR(66),
        blockchain_tx_hash VARCHAR(66),
        blockchain_confirmed_at TIMESTAMP,
        blockchain_data JSONB
    )
    """,
    "CREATE INDEX idx_bookings_blockchain_id ON bookings (blockchain_booking_id)",
    # Another legacy table pointing at bookings: adoption must not disturb it.
    """
    CREATE TABLE reviews (
        id serial PRIMARY KEY,
        booking_id uuid NOT NULL REFERENCES bookings (id),
        stars int NOT NULL
    )
    """,
)

# Statuses as the marketplace's app wrote them; the migration keeps every one unchanged.
LEGACY_STATUSES = (
    "PENDING_PAYMENT",
    "PAID",
    "COMPLETED",
    "CANCELLED",
    "paid",
    " Completed ",
    "CANCELED",
    "confirmed",
    "refunded",
)
OUR_STATUSES = frozenset({"PENDING_PAYMENT", "PAID", "COMPLETED", "CANCELLED"})

# Whole-USDC amounts, some with no exact base-unit value; the migration converts none of them.
AMOUNTS = (
    "100.00",
    "0.01",
    "0.000001",
    "12345.678901",
    "99999999.999999",
    "1.2345678",
    "0",
    "-5.00",
)

ROWS = 300


def legacy_rows() -> list[dict[str, Any]]:
    """Deterministic rows covering every status and amount case above many times."""
    statuses = list(LEGACY_STATUSES)
    amounts = list(AMOUNTS)
    start = datetime(2025, 1, 1, 9, tzinfo=UTC)
    rows = []
    for i in range(ROWS):
        rows.append(
            {
                "id": uuid.UUID(int=i + 1),
                "service_id": f"svc-{i % 17}",
                "customer_id": f"user-{i % 41}",
                "provider_id": None if i % 50 == 0 else f"prov-{i % 13}",
                "scheduled_at": start + timedelta(hours=i),
                "amount": Decimal(amounts[i % len(amounts)]),
                "status": statuses[i % len(statuses)],
                "notes": f"note {i}" if i % 3 else None,
                "created_at": datetime(2024, 12, 1) + timedelta(minutes=i),
                "blockchain_booking_id": f"0x{i:064x}" if i % 4 == 0 else None,
                "blockchain_tx_hash": f"0x{i + 7:064x}" if i % 4 == 0 else None,
            }
        )
    return rows


async def create_legacy_bookings(url: str) -> list[dict[str, Any]]:
    """Create the legacy tables in `url` and fill them; returns the inserted rows."""
    rows = legacy_rows()
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in LEGACY_DDL:
                await conn.execute(text(statement))
            await conn.execute(
                text(
                    "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"
                    " amount, status, notes, created_at, blockchain_booking_id, blockchain_tx_hash)"
                    " VALUES (:id, :service_id, :customer_id, :provider_id, :scheduled_at, :amount,"
                    " :status, :notes, :created_at, :blockchain_booking_id, :blockchain_tx_hash)"
                ),
                rows,
            )
            await conn.execute(
                text("INSERT INTO reviews (booking_id, stars) VALUES (:id, 5)"),
                [{"id": row["id"]} for row in rows[:20]],
            )
    finally:
        await engine.dispose()
    return rows


LEGACY_COLUMNS = (
    "id, service_id, customer_id, provider_id, scheduled_at, amount, status, notes, created_at,"
    " blockchain_booking_id, blockchain_tx_hash, blockchain_confirmed_at, blockchain_data"
)
