"""The marketplace of the seeds: its tables and the SQL its own app runs against them.

Schema: the marketplace's existing Supabase `bookings` table (seed 000:18-26, 000:36-47: uuid
ids, service/customer/provider, scheduled time, `amount` DECIMAL in whole USDC, a status,
created_at, completed_at, which 001:457 sets) with the seed's own additions run on it (001:728-
739, verbatim), and the `users` table whose counters 001:477-483 update.

Statements: what the app itself sends, as the seeds write them (node-postgres `$n` written as
`:n` here). The service must not break any of them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from chain.eip712 import chain_booking_id

SCHEMA = (
    """
    CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        wallet_address varchar(42),
        total_earnings DECIMAL NOT NULL DEFAULT 0,
        completed_services int NOT NULL DEFAULT 0,
        updated_at timestamp DEFAULT now()
    )
    """,
    """
    CREATE TABLE bookings (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        service_id varchar(64) NOT NULL,
        customer_id uuid NOT NULL REFERENCES users (id),
        provider_id uuid REFERENCES users (id),
        scheduled_at timestamp NOT NULL,
        amount DECIMAL NOT NULL,
        status varchar(50) NOT NULL DEFAULT 'PENDING_PAYMENT',
        created_at timestamp NOT NULL DEFAULT now(),
        completed_at timestamp
    )
    """,
    # Rows and views the app keeps on the table: adoption must leave them working.
    "CREATE VIEW provider_bookings AS SELECT provider_id, status, amount FROM bookings",
)

# Seed 001:728-739, verbatim: the seed's own schema step, which the marketplace may re-run.
SEED_ADDITIONS = (
    "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS blockchain_booking_id VARCHAR(66)",
    "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS blockchain_tx_hash VARCHAR(66)",
    "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS blockchain_confirmed_at TIMESTAMP",
    "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS completion_tx_hash VARCHAR(66)",
    "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS cancellation_tx_hash VARCHAR(66)",
    "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS blockchain_data JSONB",
    "CREATE INDEX IF NOT EXISTS idx_bookings_blockchain_id ON bookings(blockchain_booking_id)",
    "CREATE INDEX IF NOT EXISTS idx_bookings_blockchain_tx ON bookings(blockchain_tx_hash)",
    "CREATE INDEX IF NOT EXISTS idx_bookings_status_blockchain ON bookings(status, blockchain_booking_id)",
)

# The columns the app knows (what `SELECT *` returned before the service came).
APP_COLUMNS = (
    "id, service_id, customer_id, provider_id, scheduled_at, amount, status, created_at,"
    " completed_at, blockchain_booking_id, blockchain_tx_hash, blockchain_confirmed_at,"
    " completion_tx_hash, cancellation_tx_hash, blockchain_data"
)


@dataclass(frozen=True)
class Statement:
    name: str
    where: str  # seed line(s)
    sql: str


# 000:36-47: the app creates a booking: no blockchain columns, PENDING_PAYMENT.
CREATE = Statement(
    "create",
    "000:36-47",
    "INSERT INTO bookings (service_id, customer_id, provider_id, scheduled_at, amount, status,"
    " blockchain_booking_id, blockchain_tx_hash)"
    " VALUES (:service, :customer, :provider, '2024-09-10 14:00', 100.00, 'PENDING_PAYMENT',"
    " NULL, NULL) RETURNING id",
)
# 000:49-58: after the blockchain payment.
PAID_LINKED = Statement(
    "paid_linked",
    "000:49-58",
    "UPDATE bookings SET status = 'PAID', blockchain_booking_id = :cbid,"
    " blockchain_tx_hash = :tx, blockchain_confirmed_at = now() WHERE id = :id",
)
# 001:382-386: the event processor finds the booking of a chain event.
FIND = Statement(
    "find",
    "001:382-386",
    "SELECT id, customer_id, provider_id, amount, status FROM bookings"
    " WHERE blockchain_booking_id = :cbid",
)
# 001:400-407
PAID = Statement(
    "paid",
    "001:400-407",
    "UPDATE bookings SET status = 'PAID', blockchain_tx_hash = :tx,"
    " blockchain_confirmed_at = NOW(), blockchain_data = :data WHERE id = :id",
)
# 001:454-460
COMPLETED = Statement(
    "completed",
    "001:454-460",
    "UPDATE bookings SET status = 'COMPLETED', completed_at = NOW(), completion_tx_hash = :tx"
    " WHERE blockchain_booking_id = :cbid RETURNING id, customer_id, provider_id, amount",
)
# 001:477-483
EARNINGS = Statement(
    "earnings",
    "001:477-483",
    "UPDATE users SET total_earnings = total_earnings + :earned,"
    " completed_services = completed_services + 1, updated_at = NOW() WHERE id = :provider",
)
# 001:1068-1071: a failed payment goes back to PENDING_PAYMENT.
PAYMENT_FAILED = Statement(
    "payment_failed",
    "001:1068-1071",
    "UPDATE bookings SET status = 'PENDING_PAYMENT' WHERE blockchain_booking_id = :cbid",
)
# The app's own statuses, beyond the seed's seven (a marketplace has its own vocabulary).
NO_SHOW = Statement("no_show", "app", "UPDATE bookings SET status = 'NO_SHOW' WHERE id = :id")
CREATE_CONFIRMED = Statement(
    "create_confirmed",
    "app",
    "INSERT INTO bookings (service_id, customer_id, provider_id, scheduled_at, amount, status)"
    " VALUES (:service, :customer, :provider, now(), 12.5, 'confirmed') RETURNING id",
)
CANCELLED = Statement(
    "cancelled",
    "app",
    "UPDATE bookings SET status = 'CANCELLED', cancellation_tx_hash = :tx WHERE id = :id",
)
# 000:203-216 (`.select().eq(...).single()`) and the view the app reads.
READ = Statement("read", "000:203-216", f"SELECT {APP_COLUMNS} FROM bookings WHERE id = :id")  # noqa: S608
READ_VIEW = Statement(
    "read_view",
    "app",
    "SELECT status, amount FROM provider_bookings WHERE provider_id = :provider ORDER BY status",
)


@dataclass
class Marketplace:
    """The seed users of one run (a customer and a provider)."""

    customer: uuid.UUID
    provider: uuid.UUID


async def seed_users(conn: AsyncConnection) -> Marketplace:
    ids = []
    for wallet in (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    ):
        result = await conn.execute(
            text("INSERT INTO users (wallet_address) VALUES (:w) RETURNING id"), {"w": wallet}
        )
        ids.append(result.scalar_one())
    return Marketplace(customer=ids[0], provider=ids[1])


def _tx(n: int) -> str:
    return "0x" + f"{n:064x}"


async def run_app(conn: AsyncConnection) -> tuple[Marketplace, list[tuple[str, int, list[Any]]]]:
    """The app's life with two new users and three bookings; returns the users and what each
    statement did, ids replaced by names so runs on different rows compare equal."""
    market = await seed_users(conn)
    names: dict[object, str] = {market.customer: "<customer>", market.provider: "<provider>"}
    seen: list[tuple[str, int, list[tuple[Any, ...]]]] = []

    async def run(statement: Statement, **params: Any) -> list[tuple[Any, ...]]:
        result = await conn.execute(text(statement.sql), params)
        rows = [tuple(row) for row in result] if result.returns_rows else []
        seen.append((statement.name, result.rowcount, rows))
        return rows

    people = {"customer": market.customer, "provider": market.provider, "service": "svc-1"}
    ((first,),) = await run(CREATE, **people)
    ((second,),) = await run(CREATE, **people)
    names |= {first: "<first>", second: "<second>"}
    cbid, cbid2 = chain_booking_id(str(first)), chain_booking_id(str(second))
    names |= {cbid: "<cbid>", cbid2: "<cbid2>"}

    await run(PAID_LINKED, id=first, cbid=cbid, tx=_tx(1))
    await run(FIND, cbid=cbid)
    await run(PAID, id=first, tx=_tx(1), data=json.dumps({"transactionHash": _tx(1)}))
    ((_, _, provider, amount),) = await run(COMPLETED, cbid=cbid, tx=_tx(2))
    # parseFloat(formatUnits(providerAmount, 6)) in the seed; exact here.
    await run(EARNINGS, earned=Decimal(amount) * Decimal("0.9"), provider=provider)

    await run(PAID_LINKED, id=second, cbid=cbid2, tx=_tx(3))
    await run(PAYMENT_FAILED, cbid=cbid2)
    await run(NO_SHOW, id=second)
    ((third,),) = await run(CREATE_CONFIRMED, **people)
    names[third] = "<third>"
    await run(CANCELLED, id=third, tx=_tx(4))
    for booking in (first, second, third):
        await run(READ, id=booking)
    await run(READ_VIEW, provider=market.provider)
    for statement in SEED_ADDITIONS:
        await conn.execute(text(statement))
    return market, [
        (name, count, [_named(row, names) for row in rows]) for name, count, rows in seen
    ]


def _named(row: tuple[Any, ...], names: dict[object, str]) -> tuple[Any, ...]:
    """Ids and chain ids by name; timestamps only as present or not."""
    return tuple(_name(value, names) for value in row)


def _name(value: Any, names: dict[object, str]) -> Any:
    if isinstance(value, dict):  # blockchain_data
        return {key: _name(item, names) for key, item in value.items()}
    if value in names:
        return names[value]
    return "<time>" if hasattr(value, "isoformat") else value
