"""The first migration on a database whose `bookings` table already exists and holds rows."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from db.engine import make_engine, make_session_factory
from db.migrate import downgrade_async, upgrade_async
from db.models import Booking
from tests.db.introspect import execute, fetch, schema_snapshot
from tests.db.legacy import LEGACY_COLUMNS, OUR_STATUSES, ROWS, create_legacy_bookings

pytestmark = pytest.mark.integration

WALLET_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
WALLET_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
# The statuses of ours the legacy tests do not use already, with one of the marketplace's own.
EXTRA = frozenset({"PENDING_COMPLETION", "PENDING_CANCELLATION", "FAILED", "NO_SHOW"})
CHECKS = (
    "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint"
    " WHERE conrelid = 'bookings'::regclass AND contype = 'c' ORDER BY conname"
)


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


async def test_adoption_adds_columns_and_writes_no_row(database_url, caplog):
    rows = await create_legacy_bookings(database_url)
    before = await _legacy_view(database_url)
    # A row's xmin changes with any write to it: equal xmins mean no row was touched.
    versions = await fetch(database_url, "SELECT id, xmin::text FROM bookings ORDER BY id")

    with caplog.at_level(logging.INFO):
        await upgrade_async(database_url)

    # Every legacy column keeps its value, status included: nothing is rewritten.
    assert await _legacy_view(database_url) == before
    assert await fetch(database_url, "SELECT id, xmin::text FROM bookings ORDER BY id") == versions
    added = await fetch(
        database_url,
        "SELECT DISTINCT amount_units, workflow_id, status_reason, version, completed_at"
        " FROM bookings",
    )
    assert added == [(None, None, None, 1, None)]

    (adoption,) = await fetch(
        database_url,
        "SELECT legacy_rows, unknown_statuses, original_status_type, guarded_status_checks"
        " FROM bookme_schema_adoption",
    )
    unknown = Counter(row["status"] for row in rows if row["status"] not in OUR_STATUSES)
    legacy_rows, recorded, status_type, guarded = adoption
    assert legacy_rows == ROWS
    assert {entry["status"]: entry["rows"] for entry in recorded} == unknown
    # varchar(20) holds every status of ours (PENDING_CANCELLATION): the column is not touched.
    assert (status_type, guarded) == (None, [])
    constraints = await fetch(
        database_url,
        "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'bookings'::regclass",
    )
    assert all(validated for _, validated in constraints)
    assert await fetch(database_url, "SELECT count(*) FROM reviews") == [(20,)]

    # Reported in the migration's log, each unknown status with its count.
    (warning,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "status" in r.getMessage()
    ]
    assert f"{sum(unknown.values())} rows hold a status this service does not use" in warning
    for status, count in unknown.items():
        assert f"{status!r} x{count}" in warning
    assert "bookme unknown-statuses" in warning


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
            workflow_id="booking-new",
        )
        async with sessions.begin() as session:
            session.add(booking)
        async with sessions() as session:
            loaded = await session.scalar(select(Booking).where(Booking.id == booking.id))
        assert loaded is not None
        assert loaded.amount_units == 123_456_789
        assert loaded.managed is True

        # The legacy NOT NULL `amount` column is kept in step for legacy readers.
        assert await fetch(
            database_url, "SELECT amount FROM bookings WHERE id = :id", id=booking.id
        ) == [(Decimal("123.456789"),)]

        # A row of the service's must carry what the service needs; the app's rows are exempt.
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
                    workflow_id="booking-incomplete",
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

    # Statuses kept as the app wrote them; an enum cannot hold ours, so the column becomes
    # varchar, and the enum's labels still bind the app's rows.
    assert await fetch(database_url, "SELECT status, amount_units FROM bookings ORDER BY id") == [
        ("paid", None),
        ("pending", None),
    ]
    with pytest.raises(IntegrityError, match="ck_bookings_legacy_status_values"):
        await execute(
            database_url,
            "INSERT INTO bookings (id, status) VALUES ('00000000-0000-0000-0000-000000000003', 'lost')",
        )
    await execute(
        database_url,
        "INSERT INTO bookings (id, status) VALUES ('00000000-0000-0000-0000-000000000003', 'completed')",
        "DELETE FROM bookings WHERE id = '00000000-0000-0000-0000-000000000003'",
    )
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


async def test_legacy_rows_breaking_a_rule_of_ours_are_the_marketplaces_business(database_url):
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

    # Not the service's row: kept, and no rule of ours is weakened (NOT VALID) for it.
    assert (
        await fetch(
            database_url,
            "SELECT conname FROM pg_constraint WHERE conrelid = 'bookings'::regclass"
            " AND contype = 'c' AND NOT convalidated",
        )
        == []
    )
    assert await fetch(
        database_url,
        "SELECT customer_wallet, status FROM bookings",
    ) == [("not-a-wallet", "PAID")]
    # The app may go on writing such rows; a row of the service's may not.
    await execute(
        database_url,
        "INSERT INTO bookings (id, status, customer_wallet) VALUES"
        " ('00000000-0000-0000-0000-000000000003', 'PAID', 'still-not-a-wallet')",
    )
    with pytest.raises(IntegrityError, match="ck_bookings_customer_wallet_format"):
        await execute(
            database_url,
            "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"
            " customer_wallet, provider_wallet, amount_units, platform_fee_bps, inviter_fee_bps,"
            " status, workflow_id)"
            " VALUES ('00000000-0000-0000-0000-000000000002', 's', 'c', 'p', now(), 'bad',"
            " '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', 1, 1000, 0, 'PAID', 'booking-2')",
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
                workflow_id="booking-supabase",
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


@pytest.mark.parametrize(
    ("ddl", "refusal"),
    [
        ("id bigserial PRIMARY KEY, status text, amount numeric", "expected uuid"),
        # Its values would make the marketplace's rows count as the service's.
        (
            "id uuid PRIMARY KEY DEFAULT gen_random_uuid(), status text, amount numeric,"
            " workflow_id text",
            "already has a workflow_id column",
        ),
    ],
)
async def test_a_legacy_table_that_cannot_be_adopted_is_left_untouched(database_url, ddl, refusal):
    await execute(
        database_url,
        f"CREATE TABLE bookings ({ddl})",
        "INSERT INTO bookings (status, amount) VALUES ('PAID', 1.5)",
    )
    before = await schema_snapshot(database_url)

    with pytest.raises(RuntimeError, match=refusal):
        await upgrade_async(database_url)

    # The whole migration is one transaction: nothing half-applied, not even the version table.
    assert await schema_snapshot(database_url) == before
    assert await fetch(database_url, "SELECT status, amount FROM bookings") == [
        ("PAID", Decimal("1.5"))
    ]


async def test_a_legacy_check_on_status_keeps_holding_the_marketplaces_rows(database_url):
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

    assert await fetch(database_url, "SELECT id, status FROM bookings ORDER BY id") == original_rows
    assert await fetch(
        database_url, "SELECT guarded_status_checks FROM bookme_schema_adoption"
    ) == [(["bookings_status_check"],)]
    # The app's rows: held to its own rule, exactly as before.
    await execute(
        database_url,
        "INSERT INTO bookings (id, status) VALUES ('00000000-0000-0000-0000-000000000003', 'cancelled')",
    )
    with pytest.raises(IntegrityError, match="bookings_status_check"):
        await execute(
            database_url,
            "INSERT INTO bookings (id, status) VALUES ('00000000-0000-0000-0000-000000000004', 'PAID')",
        )
    # The service's rows: held to ours instead.
    await execute(
        database_url,
        "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"  # noqa: S608
        " customer_wallet, provider_wallet, amount_units, platform_fee_bps, inviter_fee_bps,"
        " status, workflow_id) VALUES ('00000000-0000-0000-0000-000000000005', 's', 'c', 'p',"
        f" now(), '{WALLET_A}', '{WALLET_B}', 1, 1000, 0, 'PAID', 'booking-5')",
    )

    await downgrade_async(database_url, "base")

    # The service's row breaks the restored rule: the rule comes back NOT VALID (still holding
    # every new write) rather than failing the downgrade.
    assert await fetch(
        database_url,
        "SELECT convalidated FROM pg_constraint WHERE conname = 'bookings_status_check'",
    ) == [(False,)]
    await execute(
        database_url,
        "DELETE FROM bookings WHERE id IN ('00000000-0000-0000-0000-000000000003',"
        " '00000000-0000-0000-0000-000000000005')",
        "ALTER TABLE bookings VALIDATE CONSTRAINT bookings_status_check",
    )
    assert _without_version_table(await schema_snapshot(database_url)) == original_schema
    assert await fetch(database_url, "SELECT id, status FROM bookings ORDER BY id") == original_rows


async def test_a_legacy_check_that_admits_our_statuses_is_left_alone(database_url):
    # The seed's vocabulary is ours: its check needs no change at all.
    await execute(
        database_url,
        f"""
        CREATE TABLE bookings (
            id uuid PRIMARY KEY, status varchar(20) NOT NULL DEFAULT 'PENDING_PAYMENT'
                CHECK (status IN ({", ".join(repr(s) for s in sorted(OUR_STATUSES | EXTRA))}))
        )
        """,
    )
    before = await fetch(database_url, CHECKS)

    await upgrade_async(database_url)

    assert [
        row for row in await fetch(database_url, CHECKS) if row[0] == "bookings_status_check"
    ] == before
    assert await fetch(
        database_url,
        "SELECT guarded_status_checks, original_status_type FROM bookme_schema_adoption",
    ) == [([], None)]
