"""The first migration on a database whose `bookings` table already exists and holds rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from db.engine import make_engine, make_session_factory
from db.migrate import downgrade_async, upgrade_async
from db.models import Booking
from tests.db.introspect import execute, fetch, schema_snapshot
from tests.db.legacy import AMOUNTS, LEGACY_COLUMNS, ROWS, STATUS_MAPPING, create_legacy_bookings

pytestmark = pytest.mark.integration

WALLET_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
WALLET_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


async def _dump(url: str) -> list[tuple[object, ...]]:
    """Every row of bookings, every column, in a comparable form."""
    return await fetch(url, "SELECT to_jsonb(b)::text FROM bookings b ORDER BY id")


async def _legacy_view(url: str) -> list[tuple[object, ...]]:
    return await fetch(url, f"SELECT {LEGACY_COLUMNS} FROM bookings ORDER BY id")  # noqa: S608


def _without_version_table(snapshot):
    return {
        key: [row for row in rows if "bookme_alembic_version" not in map(str, row)]
        for key, rows in snapshot.items()
    }


def _ignoring_positions(snapshot):
    columns = sorted((row[0], row[1], *row[3:]) for row in snapshot["columns"])
    return {**snapshot, "columns": columns}


async def test_adoption_adds_columns_keeps_rows_and_backfills_exactly(database_url):
    rows = await create_legacy_bookings(database_url)
    before = await _legacy_view(database_url)

    await upgrade_async(database_url)

    after = await _legacy_view(database_url)
    assert len(after) == ROWS
    status_column = LEGACY_COLUMNS.split(", ").index("status")
    for old, new in zip(before, after, strict=True):
        # Every legacy column keeps its value; only status is mapped onto ours.
        assert old[:status_column] == new[:status_column]
        assert old[status_column + 1 :] == new[status_column + 1 :]

    added = {
        row[0]: row[1:]
        for row in await fetch(
            database_url,
            "SELECT id, status, legacy_status, status_reason, amount_units, is_legacy, version"
            " FROM bookings",
        )
    }
    for row in rows:
        status, legacy_status, reason, amount_units, is_legacy, version = added[row["id"]]
        expected_status, expected_reason = STATUS_MAPPING[row["status"]]
        assert status == expected_status
        assert reason == expected_reason
        assert legacy_status == (None if row["status"] == expected_status else row["status"])
        expected_units = AMOUNTS[str(row["amount"])]
        assert amount_units == (None if expected_units is None else Decimal(expected_units))
        assert is_legacy is True
        assert version == 1

    (adoption,) = await fetch(
        database_url,
        "SELECT legacy_rows, statuses_remapped, amounts_not_backfilled, unvalidated_constraints,"
        " original_status_type FROM bookme_schema_adoption",
    )
    remapped = sum(1 for row in rows if STATUS_MAPPING[row["status"]][0] != row["status"])
    not_backfilled = sum(1 for row in rows if AMOUNTS[str(row["amount"])] is None)
    # varchar(20) is too narrow for our statuses: widened, and narrowed again on downgrade.
    assert adoption == (ROWS, remapped, not_backfilled, [], "character varying(20)")
    constraints = await fetch(
        database_url,
        "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'bookings'::regclass",
    )
    assert all(validated for _, validated in constraints)
    assert await fetch(database_url, "SELECT count(*) FROM reviews") == [(20,)]


async def test_upgrade_again_on_adopted_table_is_a_no_op(database_url):
    await create_legacy_bookings(database_url)
    await upgrade_async(database_url)
    schema, data = await schema_snapshot(database_url), await _dump(database_url)

    await upgrade_async(database_url)

    assert await schema_snapshot(database_url) == schema
    assert await _dump(database_url) == data


async def test_service_writes_new_bookings_into_the_adopted_table(database_url):
    await create_legacy_bookings(database_url)
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=1)
    sessions = make_session_factory(engine)
    try:
        booking = Booking(
            service_id="svc-new",
            customer_id="user-new",
            provider_id="prov-new",
            customer_wallet=WALLET_A,
            provider_wallet=WALLET_B,
            amount_units=123_456_789,
            scheduled_at=datetime(2026, 12, 1, 15, tzinfo=UTC),
            platform_fee_bps=1000,
            inviter_fee_bps=0,
        )
        async with sessions.begin() as session:
            session.add(booking)
        async with sessions() as session:
            loaded = await session.scalar(select(Booking).where(Booking.id == booking.id))
        assert loaded is not None
        assert loaded.amount_units == 123_456_789
        assert loaded.is_legacy is False

        # The legacy NOT NULL `amount` column is kept in step for legacy readers.
        assert await fetch(
            database_url, "SELECT amount FROM bookings WHERE id = :id", id=booking.id
        ) == [(Decimal("123.456789"),)]

        # A new row must carry what the service needs; only adopted rows are exempt.
        async with sessions() as session:
            session.add(
                Booking(
                    service_id="svc",
                    customer_id="u",
                    provider_id="p",
                    amount_units=1,
                    scheduled_at=datetime(2026, 12, 1, tzinfo=UTC),
                    platform_fee_bps=1000,
                    inviter_fee_bps=0,
                )
            )
            with pytest.raises(IntegrityError, match="ck_bookings_required"):
                await session.commit()
    finally:
        await engine.dispose()


async def test_downgrade_restores_the_legacy_table_and_upgrade_adopts_it_again(database_url):
    await create_legacy_bookings(database_url)
    original_schema = await schema_snapshot(database_url)
    original_rows = await _legacy_view(database_url)

    await upgrade_async(database_url)
    adopted_schema = await schema_snapshot(database_url)
    await downgrade_async(database_url, "base")

    assert _without_version_table(await schema_snapshot(database_url)) == original_schema
    assert await _legacy_view(database_url) == original_rows

    await upgrade_async(database_url)
    # Same schema; only attnum positions differ (dropped columns leave holes in Postgres).
    assert _ignoring_positions(await schema_snapshot(database_url)) == _ignoring_positions(
        adopted_schema
    )


async def test_enum_status_and_seed_era_tables_round_trip(database_url):
    await execute(
        database_url,
        "CREATE TYPE booking_status AS ENUM ('pending', 'paid', 'completed', 'cancelled')",
        """
        CREATE TABLE bookings (
            id uuid PRIMARY KEY, service_id text, customer_id text, provider_id text,
            scheduled_at timestamptz, amount numeric(12,2), status booking_status NOT NULL,
            created_at timestamptz DEFAULT now()
        )
        """,
        # The seeds' own tables, as their SQL would have created them.
        """
        CREATE TABLE blockchain_events (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(), event_type varchar(50) NOT NULL,
            transaction_hash varchar(66) NOT NULL, block_number bigint NOT NULL,
            log_index integer, booking_id varchar(66), event_data jsonb NOT NULL,
            UNIQUE (transaction_hash, log_index)
        )
        """,
        """
        CREATE TABLE signature_nonces (
            id serial PRIMARY KEY, nonce bigint UNIQUE NOT NULL,
            booking_id uuid REFERENCES bookings (id), signature_type varchar(50) NOT NULL
        )
        """,
        """
        INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at, amount, status)
        VALUES ('00000000-0000-0000-0000-000000000001', 's', 'c', 'p', now(), 10.50, 'paid'),
               ('00000000-0000-0000-0000-000000000002', 's', 'c', 'p', now(), 20.00, 'pending')
        """,
        "INSERT INTO blockchain_events (event_type, transaction_hash, block_number, log_index,"
        " event_data) VALUES ('BookingCreatedAndPaid', '0xabc', 1, 0, '{}')",
        "INSERT INTO signature_nonces (nonce, booking_id, signature_type) VALUES (7, '00000000-0000-0000-0000-000000000001', 'booking')",
    )
    original_schema = await schema_snapshot(database_url)
    original = await fetch(database_url, "SELECT id, status::text FROM bookings ORDER BY id")

    await upgrade_async(database_url)

    assert await fetch(
        database_url, "SELECT status, legacy_status, amount_units FROM bookings ORDER BY id"
    ) == [("PAID", "paid", Decimal(10_500_000)), ("FAILED", "pending", Decimal(20_000_000))]
    assert await fetch(database_url, "SELECT count(*) FROM blockchain_events_legacy") == [(1,)]
    assert await fetch(database_url, "SELECT nonce FROM signature_nonces_legacy") == [(7,)]
    assert await fetch(database_url, "SELECT count(*) FROM blockchain_events") == [(0,)]
    assert await fetch(database_url, "SELECT original_status_type FROM bookme_schema_adoption") == [
        ("booking_status",)
    ]

    await downgrade_async(database_url, "base")

    assert _without_version_table(await schema_snapshot(database_url)) == original_schema
    assert (
        await fetch(database_url, "SELECT id, status::text FROM bookings ORDER BY id") == original
    )


async def test_legacy_rows_breaking_a_rule_leave_it_not_valid_but_enforced(database_url):
    await execute(
        database_url,
        """
        CREATE TABLE bookings (
            id uuid PRIMARY KEY, service_id text, customer_id text, provider_id text,
            scheduled_at timestamptz, status text, customer_wallet text
        )
        """,
        "INSERT INTO bookings VALUES ('00000000-0000-0000-0000-000000000001', 's', 'c', 'p', now(), 'PAID', 'not-a-wallet')",
    )

    await upgrade_async(database_url)

    assert await fetch(
        database_url, "SELECT unvalidated_constraints FROM bookme_schema_adoption"
    ) == [(["ck_bookings_customer_wallet_format"],)]
    assert await fetch(
        database_url,
        "SELECT customer_wallet, status FROM bookings",
    ) == [("not-a-wallet", "PAID")]
    with pytest.raises(IntegrityError, match="ck_bookings_customer_wallet_format"):
        await execute(
            database_url,
            "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"
            " customer_wallet, provider_wallet, amount_units, platform_fee_bps, inviter_fee_bps)"
            " VALUES ('00000000-0000-0000-0000-000000000002', 's', 'c', 'p', now(), 'bad', '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', 1, 1000, 0)",
        )


async def test_supabase_shaped_table_with_uuid_ids_and_naive_timestamps(database_url):
    customer = "00000000-0000-0000-0000-00000000000b"
    provider = "00000000-0000-0000-0000-00000000000c"
    service = "00000000-0000-0000-0000-00000000000d"
    await execute(
        database_url,
        "CREATE TABLE profiles (id uuid PRIMARY KEY)",
        "INSERT INTO profiles VALUES ('00000000-0000-0000-0000-00000000000b'),"
        " ('00000000-0000-0000-0000-00000000000c')",
        """
        CREATE TABLE bookings (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            service_id uuid NOT NULL,
            customer_id uuid NOT NULL REFERENCES profiles (id),
            provider_id uuid NOT NULL REFERENCES profiles (id),
            scheduled_at timestamp NOT NULL,
            amount numeric(10,2) NOT NULL,
            status text NOT NULL DEFAULT 'PENDING_PAYMENT',
            created_at timestamp NOT NULL DEFAULT now()
        )
        """,
    )
    await upgrade_async(database_url)

    scheduled = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    engine = make_engine(database_url, pool_size=1)
    sessions = make_session_factory(engine)
    try:
        async with sessions.begin() as session:
            booking = Booking(
                service_id=service,
                customer_id=customer,
                provider_id=provider,
                customer_wallet=WALLET_A,
                provider_wallet=WALLET_B,
                amount_units=12_345_678,
                scheduled_at=scheduled,
                platform_fee_bps=1000,
                inviter_fee_bps=0,
            )
            session.add(booking)
        async with sessions() as session:
            loaded = await session.scalar(select(Booking).where(Booking.customer_id == customer))
            assert loaded is not None
            assert (loaded.service_id, loaded.provider_id) == (service, provider)
            assert loaded.scheduled_at == scheduled
            assert loaded.created_at.tzinfo is not None
    finally:
        await engine.dispose()
    # The legacy mirror keeps the legacy column's own precision (2 decimals here).
    assert await fetch(database_url, "SELECT amount, amount_units FROM bookings") == [
        (Decimal("12.35"), Decimal(12_345_678))
    ]


async def test_a_legacy_table_that_cannot_be_adopted_is_left_untouched(database_url):
    await execute(
        database_url,
        "CREATE TABLE bookings (id bigserial PRIMARY KEY, status text, amount numeric)",
        "INSERT INTO bookings (status, amount) VALUES ('PAID', 1.5)",
    )
    before = await schema_snapshot(database_url)

    with pytest.raises(RuntimeError, match="expected uuid"):
        await upgrade_async(database_url)

    # The whole migration is one transaction: nothing half-applied, not even the version table.
    assert await schema_snapshot(database_url) == before
    assert await fetch(database_url, "SELECT status, amount FROM bookings") == [
        ("PAID", Decimal("1.5"))
    ]


async def test_a_legacy_check_on_status_is_set_aside_and_restored(database_url):
    await execute(
        database_url,
        """
        CREATE TABLE bookings (
            id uuid PRIMARY KEY, service_id text, customer_id text, provider_id text,
            scheduled_at timestamptz, amount numeric,
            status text NOT NULL CHECK (status IN ('pending', 'paid', 'cancelled'))
        )
        """,
        "INSERT INTO bookings VALUES"
        " ('00000000-0000-0000-0000-000000000001', 's', 'c', 'p', now(), 5, 'paid'),"
        " ('00000000-0000-0000-0000-000000000002', 's', 'c', 'p', now(), 6, 'pending')",
    )
    original_schema = await schema_snapshot(database_url)
    original_rows = await fetch(database_url, "SELECT id, status FROM bookings ORDER BY id")

    await upgrade_async(database_url)

    assert await fetch(database_url, "SELECT status, legacy_status FROM bookings ORDER BY id") == [
        ("PAID", "paid"),
        ("FAILED", "pending"),
    ]
    assert await fetch(
        database_url, "SELECT dropped_status_checks FROM bookme_schema_adoption"
    ) == [(["bookings_status_check"],)]

    await downgrade_async(database_url, "base")

    assert _without_version_table(await schema_snapshot(database_url)) == original_schema
    assert await fetch(database_url, "SELECT id, status FROM bookings ORDER BY id") == original_rows
