"""Revision 0002: the deadline columns arrive empty on existing rows and leave cleanly."""

from __future__ import annotations

import pytest

from db.migrate import downgrade_async, upgrade_async
from tests.db.introspect import execute, fetch

pytestmark = pytest.mark.integration

COLUMNS = "SELECT column_name FROM information_schema.columns WHERE table_name = 'bookings'"


async def test_rows_from_before_keep_null_deadlines_and_downgrade_drops_the_columns(
    database_url: str,
) -> None:
    await upgrade_async(database_url, "0001")
    await execute(
        database_url,
        "INSERT INTO bookings (id, service_id, customer_id, provider_id, customer_wallet,"
        " provider_wallet, amount_units, scheduled_at, platform_fee_bps, inviter_fee_bps,"
        " blockchain_booking_id)"
        " VALUES ('00000000-0000-0000-0000-000000000002', 's', 'c', 'p',"
        " '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',"
        " '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', 5, now(), 1000, 0,"
        " '0x' || repeat('ab', 32))",
    )

    await upgrade_async(database_url)
    assert await fetch(database_url, "SELECT payment_deadline_at, release_at FROM bookings") == [
        (None, None)
    ]

    await downgrade_async(database_url, "0001")
    columns = {row[0] for row in await fetch(database_url, COLUMNS)}
    assert "scheduled_at" in columns
    assert not {"payment_deadline_at", "release_at"} & columns
    assert await fetch(database_url, "SELECT count(*) FROM bookings") == [(1,)]
