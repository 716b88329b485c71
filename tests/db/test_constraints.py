"""What the schema refuses: bad money, bad statuses, duplicate event identities and keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, Table, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import BlockchainEvent, Booking, BookingEvent, RateLimitCounter, SignatureNonce
from db.settlement_models import PlatformFee, ProviderEarning, Refund

pytestmark = pytest.mark.integration

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TX = "0x" + "ab" * 32
BLOCK = "0x" + "cd" * 32


def booking_row(**overrides):
    """A row the service manages (it has a workflow): every ck_bookings_* check holds it."""
    booking_id = uuid.uuid4()
    row = {
        "id": booking_id,
        "workflow_id": f"booking-{booking_id}",
        "service_id": "svc-1",
        "customer_id": "user-1",
        "provider_id": "prov-1",
        "customer_wallet": CUSTOMER,
        "provider_wallet": PROVIDER,
        "amount_units": 100_000_000,
        "scheduled_at": datetime(2026, 12, 1, 15, tzinfo=UTC),
        "platform_fee_bps": 1000,
        "inviter_fee_bps": 0,
    }
    return {**row, **overrides}


async def insert_rows(sessions, model, *rows):
    # Core inserts on the table as reflected from the database: the models' own checks (enum
    # types, the version counter) would stop bad values before the database ever saw them.
    async with sessions.begin() as session:
        table = await session.run_sync(
            lambda sync: Table(model.__tablename__, MetaData(), autoload_with=sync.connection())
        )
        await session.execute(insert(table), list(rows))


async def new_booking(sessions):
    row = booking_row()
    await insert_rows(sessions, Booking, row)
    return row["id"]


def identity(log_index=0):
    return {"chain_id": 31337, "tx_hash": TX, "log_index": log_index}


async def refused(sessions: async_sessionmaker[AsyncSession], constraint: str, model, *rows):
    with pytest.raises(IntegrityError, match=constraint):
        await insert_rows(sessions, model, *rows)


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"amount_units": 0}, "ck_bookings_amount_units_positive"),
        ({"amount_units": -1}, "ck_bookings_amount_units_positive"),
        ({"status": "SETTLED"}, "ck_bookings_status"),
        ({"status": "paid"}, "ck_bookings_status"),
        ({"customer_wallet": "0x1234"}, "ck_bookings_customer_wallet_format"),
        ({"provider_wallet": None}, "ck_bookings_required"),
        ({"platform_fee_bps": -1}, "ck_bookings_fee_bps_range"),
        (
            {"platform_fee_bps": 9000, "inviter_fee_bps": 1001, "inviter_wallet": CUSTOMER},
            "ck_bookings_fee_bps_range",
        ),
        ({"inviter_fee_bps": 500}, "ck_bookings_inviter_fee_needs_wallet"),
        ({"version": 0}, "ck_bookings_version_positive"),
    ],
)
async def test_bookings_refuse(sessions, overrides, constraint):
    await refused(sessions, constraint, Booking, booking_row(**overrides))


async def test_the_marketplaces_own_rows_are_held_to_none_of_the_services_checks(sessions):
    # What the marketplace's app inserts into its table: no workflow, no wallets, no amount
    # in base units, a status of its own. None of the checks above applies to it.
    await insert_rows(
        sessions,
        Booking,
        {
            "id": uuid.uuid4(),
            "service_id": "svc-1",
            "customer_id": "user-1",
            "provider_id": "prov-1",
            "scheduled_at": datetime(2026, 12, 1, 15, tzinfo=UTC),
            "status": "no_show",
        },
    )
    await insert_rows(
        sessions,
        Booking,
        booking_row(workflow_id=None, customer_wallet="0x1234", amount_units=0, version=0),
    )
    # The moment it gets a workflow (adoption), it must be a complete booking of ours.
    row = booking_row(workflow_id=None, status="no_show", provider_wallet=None)
    await insert_rows(sessions, Booking, row)

    async def adopt(**values: object) -> None:
        async with sessions.begin() as session:
            table = await session.run_sync(
                lambda sync: Table("bookings", MetaData(), autoload_with=sync.connection())
            )
            await session.execute(update(table).where(table.c.id == row["id"]).values(**values))

    with pytest.raises(IntegrityError, match="ck_bookings_status"):
        await adopt(workflow_id="booking-x", provider_wallet=PROVIDER)
    with pytest.raises(IntegrityError, match="ck_bookings_required"):
        await adopt(workflow_id="booking-x", status="PENDING_PAYMENT")


async def test_bookings_accept_every_status_and_unique_keys_only_once(sessions):
    for status in ("PENDING_PAYMENT", "PAID", "PENDING_COMPLETION", "COMPLETED"):
        await insert_rows(sessions, Booking, booking_row(status=status))
    chain_id = "0x" + "11" * 32
    await insert_rows(
        sessions, Booking, booking_row(blockchain_booking_id=chain_id, idempotency_key="k1")
    )
    await refused(
        sessions,
        "uq_bookings_blockchain_booking_id",
        Booking,
        booking_row(blockchain_booking_id=chain_id),
    )
    await refused(
        sessions, "uq_bookings_idempotency_key", Booking, booking_row(idempotency_key="k1")
    )
    # NULL keys do not collide.
    await insert_rows(sessions, Booking, booking_row(), booking_row())


async def test_blockchain_event_identity_is_unique(sessions):
    event = {
        **identity(),
        "block_number": 10,
        "block_hash": BLOCK,
        "contract_address": PROVIDER,
        "event_type": "BookingCreatedAndPaid",
        "payload": {"amount": str(2**255)},
    }
    await insert_rows(sessions, BlockchainEvent, event)
    await insert_rows(sessions, BlockchainEvent, {**event, "log_index": 1})
    await insert_rows(sessions, BlockchainEvent, {**event, "chain_id": 8453})
    await refused(
        sessions, "uq_blockchain_events_chain_id_tx_hash_log_index", BlockchainEvent, event
    )
    await refused(
        sessions,
        "ck_blockchain_events_status",
        BlockchainEvent,
        {**event, "log_index": 2, "status": "DONE"},
    )
    await refused(
        sessions,
        "ck_blockchain_events_retry_count_non_negative",
        BlockchainEvent,
        {**event, "log_index": 3, "retry_count": -1},
    )


async def test_money_legs_refuse_negative_amounts_and_a_second_record_of_one_event(sessions):
    booking_id = await new_booking(sessions)
    fee = {"booking_id": booking_id, "platform_amount_units": 10_000_000, **identity()}
    earning = {
        "booking_id": booking_id,
        "provider_wallet": PROVIDER,
        "amount_units": 90_000_000,
        **identity(),
    }
    refund = {"booking_id": booking_id, "customer_amount_units": 100_000_000, **identity(1)}

    await refused(
        sessions,
        "ck_platform_fees_amounts_non_negative",
        PlatformFee,
        {**fee, "platform_amount_units": -1},
    )
    await refused(
        sessions,
        "ck_platform_fees_amounts_non_negative",
        PlatformFee,
        {**fee, "inviter_amount_units": -1},
    )
    await refused(
        sessions,
        "ck_provider_earnings_amount_units_non_negative",
        ProviderEarning,
        {**earning, "amount_units": -1},
    )
    await refused(
        sessions, "ck_refunds_amounts_non_negative", Refund, {**refund, "platform_amount_units": -5}
    )

    await insert_rows(sessions, PlatformFee, fee)
    await insert_rows(sessions, ProviderEarning, earning)
    await insert_rows(sessions, Refund, refund)
    await refused(sessions, "uq_platform_fees_chain_id_tx_hash_log_index", PlatformFee, fee)
    await refused(
        sessions, "uq_provider_earnings_chain_id_tx_hash_log_index", ProviderEarning, earning
    )
    await refused(sessions, "uq_refunds_chain_id_tx_hash_log_index", Refund, refund)
    # One live settlement per booking: a different event for the same booking is refused...
    await refused(
        sessions, "uq_platform_fees_booking_id_live", PlatformFee, {**fee, "log_index": 5}
    )
    # ...unless the first one was orphaned by a reorg.
    async with sessions.begin() as session:
        await session.execute(update(PlatformFee).values(reverted_at=datetime.now(UTC)))
    await insert_rows(sessions, PlatformFee, {**fee, "tx_hash": "0x" + "ef" * 32})


async def test_booking_event_dedupe_key_writes_one_row(sessions):
    booking_id = await new_booking(sessions)
    event = {
        "booking_id": booking_id,
        "kind": "paid",
        "from_status": "PENDING_PAYMENT",
        "to_status": "PAID",
    }
    await insert_rows(sessions, BookingEvent, {**event, "dedupe_key": "paid:31337:0xab:0"})
    await refused(
        sessions,
        "uq_booking_events_booking_id_dedupe_key",
        BookingEvent,
        {**event, "dedupe_key": "paid:31337:0xab:0"},
    )
    # Rows without a dedupe key (e.g. notes) may repeat.
    await insert_rows(sessions, BookingEvent, event, event)
    await refused(
        sessions, "ck_booking_events_to_status", BookingEvent, {**event, "to_status": "DONE"}
    )
    await refused(
        sessions,
        "fk_booking_events_booking_id_bookings",
        BookingEvent,
        {**event, "booking_id": uuid.uuid4()},
    )


async def test_nonces_are_unique(sessions):
    booking_id = await new_booking(sessions)
    expires = datetime.now(UTC) + timedelta(minutes=5)
    row = {"nonce": 2**200, "booking_id": booking_id, "kind": "booking", "expires_at": expires}
    await insert_rows(sessions, SignatureNonce, row)
    await refused(sessions, "pk_signature_nonces", SignatureNonce, row)
    await refused(
        sessions, "ck_signature_nonces_kind", SignatureNonce, {**row, "nonce": 1, "kind": "refund"}
    )
    await refused(
        sessions, "ck_signature_nonces_nonce_non_negative", SignatureNonce, {**row, "nonce": -1}
    )


async def test_rate_limit_counter_is_one_row_per_key_and_window(sessions):
    window = datetime(2026, 1, 1, tzinfo=UTC)
    await insert_rows(
        sessions, RateLimitCounter, {"key": "user:1", "window_start": window, "count": 1}
    )
    await refused(
        sessions,
        "pk_rate_limit_counters",
        RateLimitCounter,
        {"key": "user:1", "window_start": window, "count": 1},
    )
