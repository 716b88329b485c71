"""The marketplace's own app keeps working on its `bookings` table once the service adopts it."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities import BookingStore
from bookme.ops.unknown_statuses import list_unknown_statuses
from bookme.settings import Settings
from db.engine import make_engine, make_session_factory
from db.marketplace_counters import whole_usdc
from db.marketplace_rows import unknown_statuses
from db.migrate import downgrade_async, upgrade_async
from db.stats import work_stats
from tests.activities.test_marketplace_counters import completed, paid_booking
from tests.db.introspect import fetch, schema_snapshot
from tests.db.seed_app import APP_COLUMNS, SCHEMA, SEED_ADDITIONS, Marketplace, run_app
from tests.workflows.fakes import completion_event

pytestmark = pytest.mark.integration
ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _marketplace(engine: AsyncEngine) -> None:
    """The seeds' marketplace: its tables and the seed's schema step run on them."""
    async with engine.begin() as conn:
        for statement in (*SCHEMA, *SEED_ADDITIONS):
            await conn.execute(text(statement))


async def _app(engine: AsyncEngine) -> tuple[Marketplace, list[tuple[str, int, list[Any]]]]:
    async with engine.begin() as conn:
        return await run_app(conn)


async def _counters(url: str, market: Marketplace) -> list[tuple[object, ...]]:
    return await fetch(
        url,
        "SELECT total_earnings, completed_services FROM users WHERE id = :id",
        id=market.provider,
    )


async def test_the_apps_own_inserts_and_updates_work_before_and_after_the_migration(
    database_url, engine
):
    await _marketplace(engine)
    _, before = await _app(engine)
    original_schema = await schema_snapshot(database_url)
    app_rows = await fetch(database_url, f"SELECT {APP_COLUMNS} FROM bookings ORDER BY id")  # noqa: S608

    await upgrade_async(database_url)

    # What the app wrote is untouched, and none of it is the service's.
    assert (
        await fetch(database_url, f"SELECT {APP_COLUMNS} FROM bookings ORDER BY id")  # noqa: S608
        == app_rows
    )
    assert await fetch(database_url, "SELECT DISTINCT workflow_id FROM bookings") == [(None,)]
    # The app runs the very same statements, with the very same outcomes.
    market, after = await _app(engine)
    assert after == before
    assert await fetch(
        database_url, "SELECT status, count(*) FROM bookings GROUP BY status ORDER BY status"
    ) == [("CANCELLED", 2), ("COMPLETED", 2), ("NO_SHOW", 2)]
    # Its own counters, its own UPDATE.
    assert await _counters(database_url, market) == [(Decimal("90.000"), 1)]

    # And after the service is removed again, exactly as before it came.
    await downgrade_async(database_url, "base")
    assert (await _app(engine))[1] == before
    assert _without_version_table(await schema_snapshot(database_url)) == original_schema


async def test_the_service_and_the_app_share_the_table_and_the_counters(database_url, engine):
    await _marketplace(engine)
    await _app(engine)
    await upgrade_async(database_url)
    # After the migration the app goes on writing statuses of its own.
    market, _ = await _app(engine)

    sessions = make_session_factory(engine)
    store = BookingStore(sessions, escrow_address=ESCROW)
    booking = await paid_booking(store, str(market.provider), customer_id=str(market.customer))
    done = completion_event(booking)
    assert done.completion is not None
    await ActivityEnvironment().run(store.apply_transition, completed(booking, "done", done))
    await ActivityEnvironment().run(store.apply_transition, completed(booking, "again", done))

    # The app's own completion (90) plus the service's, once, to the base unit.
    assert await _counters(database_url, market) == [
        (Decimal("90.000") + whole_usdc(done.completion.provider_amount), 2)
    ]
    # The service's row reads right in the app's own columns: amount, completed_at.
    ((amount, completed_at, status),) = await fetch(
        database_url,
        "SELECT amount, completed_at, status FROM bookings WHERE id = :id",
        id=uuid.UUID(booking.booking_id),
    )
    assert (amount, status) == (Decimal("123.456789"), "COMPLETED")
    assert completed_at is not None

    # Statuses the service does not use are listed, live (rows written after adoption too).
    async with sessions() as session:
        listed = {count.status: count.rows for count in await unknown_statuses(session)}
        # The worker's gauges count the service's bookings only, and do not trip on the rest.
        gauges = (await work_stats(session, timedelta(minutes=5))).bookings_by_status
    assert listed == {"NO_SHOW": 2}
    assert {status: n for status, n in gauges.items() if n} == {"COMPLETED": 1}
    out = io.StringIO()
    await list_unknown_statuses(Settings(database_url=database_url), out)
    assert "'NO_SHOW'" in out.getvalue()
    assert "2 rows" in out.getvalue()
    # The migration recorded what it found then (one run of the app).
    assert await fetch(database_url, "SELECT unknown_statuses FROM bookme_schema_adoption") == [
        ([{"status": "NO_SHOW", "rows": 1}],)
    ]


def _without_version_table(snapshot):
    return {
        key: [row for row in rows if "bookme_alembic_version" not in map(str, row)]
        for key, rows in snapshot.items()
    }
