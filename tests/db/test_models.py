"""Writing and reading every model through the async session factory."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import StatementError
from sqlalchemy.orm.exc import StaleDataError

from db.engine import make_engine
from db.models import (
    BlockchainEvent,
    Booking,
    BookingEvent,
    ChainCursor,
    RecentBlock,
    SignatureNonce,
)
from db.nonces import reserve_nonce
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from db.statuses import BlockchainEventStatus, BookingStatus, NonceKind
from workflows.audit import AuditAction

pytestmark = pytest.mark.integration

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
INVITER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
MAX_UINT256 = 2**256 - 1


def make_booking(**overrides) -> Booking:
    fields = {
        "service_id": "svc-9",
        "customer_id": "user-9",
        "provider_id": "prov-9",
        "customer_wallet": CUSTOMER,
        "provider_wallet": PROVIDER,
        "inviter_wallet": INVITER,
        "amount_units": MAX_UINT256,
        "scheduled_at": datetime(2026, 12, 24, 18, 30, tzinfo=UTC),
        "platform_fee_bps": 500,
        "inviter_fee_bps": 500,
        "blockchain_booking_id": "0x" + "42" * 32,
        "blockchain_data": {"authorization": {"amount": str(MAX_UINT256)}},
        "workflow_id": "booking-x",
        "idempotency_key": "idem-1",
        "request_hash": "sha256:abc",
    }
    return Booking(**{**fields, **overrides})


async def test_booking_and_its_records_round_trip(sessions):
    booking = make_booking()
    async with sessions.begin() as session:
        session.add(booking)
        await session.flush()
        identity = {"chain_id": 31337, "tx_hash": "0x" + "ab" * 32, "log_index": 3}
        session.add_all(
            [
                BookingEvent(
                    booking_id=booking.id,
                    kind=AuditAction.CREATED,
                    to_status=BookingStatus.PENDING_PAYMENT,
                    actor="api:user-9",
                    details={"amount_units": str(MAX_UINT256)},
                ),
                BlockchainEvent(
                    **identity,
                    block_number=12,
                    block_hash="0x" + "cd" * 32,
                    contract_address=PROVIDER,
                    event_type="ServiceCompleted",
                    chain_booking_id=booking.blockchain_booking_id,
                    booking_id=booking.id,
                    payload={"providerAmount": "90"},
                ),
                PlatformFee(
                    booking_id=booking.id,
                    platform_amount_units=5,
                    inviter_amount_units=5,
                    inviter_wallet=INVITER,
                    **identity,
                ),
                ProviderEarning(
                    booking_id=booking.id, provider_wallet=PROVIDER, amount_units=90, **identity
                ),
                Refund(
                    booking_id=booking.id, customer_amount_units=0, **{**identity, "log_index": 4}
                ),
                ChainCursor(
                    chain_id=31337,
                    contract_address=PROVIDER,
                    last_block_number=12,
                    last_block_hash="0x" + "cd" * 32,
                ),
                RecentBlock(
                    chain_id=31337,
                    contract_address=PROVIDER,
                    block_number=12,
                    block_hash="0x" + "cd" * 32,
                ),
            ]
        )

    async with sessions() as session:
        loaded = await session.get(Booking, booking.id)
        assert loaded is not None
        assert loaded.amount_units == MAX_UINT256
        assert isinstance(loaded.amount_units, int)
        assert loaded.status == BookingStatus.PENDING_PAYMENT
        assert loaded.version == 1
        assert loaded.managed is True
        assert loaded.completed_at is None
        assert loaded.blockchain_data == {"authorization": {"amount": str(MAX_UINT256)}}
        assert loaded.scheduled_at == datetime(2026, 12, 24, 18, 30, tzinfo=UTC)
        assert loaded.created_at.tzinfo is not None

        (event,) = (await session.scalars(select(BookingEvent))).all()
        assert (event.kind, event.to_status, event.from_status) == (
            "created",
            "PENDING_PAYMENT",
            None,
        )
        chain_event = await session.scalar(select(BlockchainEvent))
        assert chain_event is not None
        assert chain_event.status == BlockchainEventStatus.RECEIVED
        assert chain_event.retry_count == 0
        assert chain_event.payload == {"providerAmount": "90"}
        fee = await session.scalar(select(PlatformFee))
        assert fee is not None
        assert (fee.platform_amount_units, fee.inviter_amount_units) == (5, 5)
        refund = await session.scalar(select(Refund))
        assert refund is not None
        assert (refund.provider_amount_units, refund.emergency) == (0, False)


async def test_base_units_refuse_floats(sessions):
    async with sessions() as session:
        session.add(make_booking(amount_units=1.5, idempotency_key=None))
        with pytest.raises(StatementError, match="base units must be int"):
            await session.flush()


async def test_a_lost_update_race_is_detected_by_version(sessions):
    booking = make_booking()
    async with sessions.begin() as session:
        session.add(booking)
    async with sessions() as first, sessions() as second:
        mine = await first.get(Booking, booking.id)
        theirs = await second.get(Booking, booking.id)
        assert mine is not None
        assert theirs is not None
        mine.status = BookingStatus.PAID
        await first.commit()
        theirs.status = BookingStatus.CANCELLED
        with pytest.raises(StaleDataError):
            await second.commit()
    async with sessions() as session:
        final = await session.get(Booking, booking.id)
        assert final is not None
        assert (final.status, final.version) == ("PAID", 2)


async def test_chain_cursor_upsert_advances_one_row(sessions):
    key = {"chain_id": 31337, "contract_address": PROVIDER}
    for number in (5, 9):
        statement = pg_insert(ChainCursor).values(
            **key, last_block_number=number, last_block_hash=f"0x{number:064x}"
        )
        async with sessions.begin() as session:
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["chain_id", "contract_address"],
                    set_={
                        "last_block_number": statement.excluded.last_block_number,
                        "last_block_hash": statement.excluded.last_block_hash,
                    },
                )
            )
    async with sessions() as session:
        (cursor,) = (await session.scalars(select(ChainCursor))).all()
        assert (cursor.last_block_number, cursor.last_block_hash) == (9, f"0x{9:064x}")


async def test_reserved_nonces_are_unique_under_concurrency(sessions):
    booking = make_booking()
    async with sessions.begin() as session:
        session.add(booking)
    expires = datetime.now(UTC) + timedelta(minutes=5)

    async def reserve(kind: NonceKind) -> int:
        async with sessions.begin() as session:
            return await reserve_nonce(
                session,
                booking_id=booking.id,
                kind=kind,
                expires_at=expires,
                authorization={"n": "x"},
            )

    nonces = await asyncio.gather(*(reserve(NonceKind.BOOKING) for _ in range(10)))
    nonces.append(await reserve(NonceKind.CANCELLATION))
    assert len(set(nonces)) == 11
    assert all(isinstance(nonce, int) and nonce > 0 for nonce in nonces)
    async with sessions() as session:
        stored = (await session.scalars(select(SignatureNonce.nonce))).all()
        assert sorted(stored) == sorted(nonces)


async def test_rolled_back_booking_leaves_nothing(sessions):
    booking_id = uuid.uuid4()
    async with sessions() as session:
        session.add(make_booking(id=booking_id))
        await session.flush()
        await session.rollback()
    async with sessions() as session:
        assert await session.get(Booking, booking_id) is None


async def test_statuses_read_back_as_enums_and_unknown_ones_are_refused(sessions):
    booking = make_booking()
    async with sessions.begin() as session:
        session.add(booking)
    async with sessions() as session:
        loaded = await session.get(Booking, booking.id)
        assert loaded is not None
        assert loaded.status is BookingStatus.PENDING_PAYMENT
        loaded.status = "SETTLED"
        with pytest.raises(StatementError, match="SETTLED"):
            await session.flush()


@pytest.mark.parametrize("units", [1, 10**6, 2**64, 2**255, MAX_UINT256])
async def test_base_units_round_trip_exactly(sessions, units):
    booking = make_booking(amount_units=units, idempotency_key=None)
    async with sessions.begin() as session:
        session.add(booking)
    async with sessions() as session:
        assert (
            await session.scalar(select(Booking.amount_units).where(Booking.id == booking.id))
            == units
        )


async def test_engine_names_its_connections(migrated_url):
    engine = make_engine(migrated_url, pool_size=1, application_name="bookme-test")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW application_name"))).scalar_one() == "bookme-test"
    finally:
        await engine.dispose()
