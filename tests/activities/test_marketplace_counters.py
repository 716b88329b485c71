"""The marketplace's users.total_earnings / completed_services, kept by the booking store."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import BookingStore
from db.marketplace_counters import whole_usdc
from tests.activities.conftest import ESCROW
from tests.workflows.fakes import completion_event, make_booking, payment_event
from workflows.audit import AuditAction
from workflows.types import (
    BookingInput,
    BookingStatus,
    ChainEventKind,
    ChainEventSignal,
    EventOutcome,
    Settlement,
    TransitionRecord,
)

pytestmark = pytest.mark.integration
S = BookingStatus
SOMEONE_ELSE = {"uuid": str(uuid.uuid4()), "bigint": "7", "text": "someone-else"}

# The seed's users table (seed 001, processServiceCompleted), Supabase-style uuid ids.
USERS_DDL = """
    CREATE TABLE users (
        id {id_type} PRIMARY KEY,
        wallet_address varchar(42),
        total_earnings DECIMAL DEFAULT 0,
        completed_services int DEFAULT 0,
        updated_at timestamp DEFAULT now()
    )
"""


async def _sql(sessions, statement: str, **params: object) -> list[tuple[object, ...]]:
    async with sessions.begin() as session:
        result = await session.execute(text(statement), params)
        return [tuple(row) for row in result] if result.returns_rows else []


def transition(
    booking: BookingInput, key: str, before: S, after: S, action: AuditAction, **extra: Any
) -> TransitionRecord:
    return TransitionRecord(
        booking_id=booking.booking_id,
        dedupe_key=f"{booking.booking_id}:{key}",
        from_status=before,
        to_status=after,
        action=action,
        occurred_at=datetime.now(UTC),
        **extra,
    )


def completed(booking: BookingInput, key: str, done: ChainEventSignal) -> TransitionRecord:
    assert done.completion is not None
    return transition(
        booking, key, S.PAID, S.COMPLETED, AuditAction.SERVICE_COMPLETED,
        event=done, event_outcome=EventOutcome.PROCESSED,
        settlement=Settlement(
            kind=ChainEventKind.COMPLETION,
            provider_amount=done.completion.provider_amount,
            platform_amount=done.completion.platform_fee,
            inviter_amount=done.completion.inviter_fee,
        ),
    )  # fmt: skip


async def paid_booking(
    store: BookingStore, provider_id: str, customer_id: str = "customer-1"
) -> BookingInput:
    """A booking of 123.456789 USDC (the provider's share has all six decimals), recorded
    and paid through the store."""
    booking = dataclasses.replace(
        make_booking(amount=123_456_789), provider_id=provider_id, customer_id=customer_id
    )
    env = ActivityEnvironment()
    await env.run(store.record_booking, booking)
    paid = transition(
        booking, "paid", S.PENDING_PAYMENT, S.PAID, AuditAction.PAYMENT_CONFIRMED,
        event=payment_event(booking), event_outcome=EventOutcome.PROCESSED,
    )  # fmt: skip
    await env.run(store.apply_transition, paid)
    return booking


async def _counters(sessions, user_id: str) -> tuple[object, ...]:
    (row,) = await _sql(
        sessions,
        "SELECT total_earnings, completed_services, updated_at FROM users WHERE id::text = :id",
        id=user_id,
    )
    return row


@pytest.mark.parametrize(
    ("id_type", "provider_id"),
    [("uuid", "4f0c3c1e-6a43-4c1f-9d7a-2d1f5f0e9b11"), ("bigint", "42"), ("text", "prov-7")],
)
async def test_completion_moves_the_providers_counters_once_per_earning(
    sessions, id_type, provider_id
):
    await _sql(sessions, USERS_DDL.format(id_type=id_type))
    await _sql(
        sessions,
        "INSERT INTO users (id, total_earnings, completed_services, updated_at)"  # noqa: S608
        " VALUES (CAST(CAST(:id AS text) AS " + id_type + "), 10.5, 3, '2020-01-01')",
        id=provider_id,
    )
    await _sql(
        sessions,
        "INSERT INTO users (id) VALUES (CAST(CAST(:id AS text) AS " + id_type + "))",  # noqa: S608
        id=SOMEONE_ELSE[id_type],
    )
    store = BookingStore(sessions, escrow_address=ESCROW)  # detects the counters itself
    booking = await paid_booking(store, provider_id)
    done = completion_event(booking)
    assert done.completion is not None
    share = done.completion.provider_amount
    assert share % 10**6 != 0  # a share with base-unit decimals
    env = ActivityEnvironment()

    await env.run(store.apply_transition, completed(booking, "done", done))

    earned, services, touched = await _counters(sessions, provider_id)
    assert earned == Decimal("10.5") + Decimal(share) / 10**6  # to the base unit, no float
    assert services == 4
    assert isinstance(touched, datetime)
    assert touched > datetime(2020, 1, 2)
    (completed_at,) = (await _sql(sessions, "SELECT completed_at FROM bookings"))[0]
    assert completed_at is not None

    # The same completion event recorded again: a retried activity (same key) or another
    # path applying it (a reconcile repair, another key). The earning is counted once.
    await env.run(store.apply_transition, completed(booking, "done", done))
    await env.run(store.apply_transition, completed(booking, "repair", done))
    assert (await _counters(sessions, provider_id))[:2] == (earned, 4)
    # Nobody else's counters moved.
    others = await _sql(
        sessions,
        "SELECT total_earnings, completed_services FROM users WHERE id::text <> :id",
        id=provider_id,
    )
    assert others == [(Decimal(0), 0)]


async def test_a_reorg_takes_the_earning_back_and_the_reinclusion_counts_it_once(sessions):
    provider_id = str(uuid.uuid4())
    await _sql(sessions, USERS_DDL.format(id_type="uuid"))
    await _sql(sessions, "INSERT INTO users (id) VALUES (CAST(:id AS uuid))", id=provider_id)
    store = BookingStore(sessions, escrow_address=ESCROW)
    booking = await paid_booking(store, provider_id)
    done = completion_event(booking)
    assert done.completion is not None
    env = ActivityEnvironment()
    share = whole_usdc(done.completion.provider_amount)

    await env.run(store.apply_transition, completed(booking, "done", done))
    assert (await _counters(sessions, provider_id))[:2] == (share, 1)

    reorged = transition(
        booking, "reorged", S.COMPLETED, S.PAID, AuditAction.SETTLEMENT_REORGED,
        event=done, event_outcome=EventOutcome.REORGED,
    )  # fmt: skip
    await env.run(store.apply_transition, reorged)
    assert (await _counters(sessions, provider_id))[:2] == (Decimal(0), 0)
    assert await _sql(sessions, "SELECT completed_at FROM bookings") == [(None,)]

    await env.run(store.apply_transition, completed(booking, "reincluded", done))
    await env.run(store.apply_transition, completed(booking, "reincluded-again", done))
    assert (await _counters(sessions, provider_id))[:2] == (share, 1)


@pytest.mark.parametrize(
    "users_ddl",
    [
        None,  # no users table at all: a deployment without the marketplace's tables
        "CREATE TABLE users (id uuid PRIMARY KEY, wallet_address varchar(42))",
    ],
)
async def test_without_the_counter_columns_completion_just_records_the_earning(sessions, users_ddl):
    if users_ddl:
        await _sql(sessions, users_ddl)
    store = BookingStore(sessions, escrow_address=ESCROW)
    booking = await paid_booking(store, str(uuid.uuid4()))
    await ActivityEnvironment().run(
        store.apply_transition, completed(booking, "done", completion_event(booking))
    )
    assert await _sql(
        sessions, "SELECT count(*), count(marketplace_counted_at) FROM provider_earnings"
    ) == [(1, 0)]


async def test_a_provider_missing_from_users_does_not_stop_the_completion(sessions):
    await _sql(sessions, USERS_DDL.format(id_type="uuid"))
    store = BookingStore(sessions, escrow_address=ESCROW)
    booking = await paid_booking(store, str(uuid.uuid4()))
    await ActivityEnvironment().run(
        store.apply_transition, completed(booking, "done", completion_event(booking))
    )
    assert await _sql(sessions, "SELECT status FROM bookings") == [("COMPLETED",)]
    assert await _sql(sessions, "SELECT count(*) FROM users") == [(0,)]


@pytest.mark.parametrize(
    ("units", "usdc"),
    [
        (0, "0"),
        (1, "0.000001"),
        (90_123_457, "90.123457"),
        (
            2**256 - 1,
            "115792089237316195423570985008687907853269984665640564039457584007913129.639935",
        ),
    ],
)
def test_whole_usdc_is_exact(units, usdc):
    assert whole_usdc(units) == Decimal(usdc)


async def test_recording_a_booking_over_a_marketplace_row_is_a_clear_conflict(sessions):
    booking = make_booking()
    await _sql(
        sessions,
        "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at, status)"
        " VALUES (CAST(:id AS uuid), 'svc', 'c', 'p', now(), 'NO_SHOW')",
        id=booking.booking_id,
    )
    store = BookingStore(sessions, escrow_address=ESCROW)
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(store.record_booking, booking)
    assert refused.value.type == "BookingConflict"
    assert refused.value.non_retryable
    assert await _sql(sessions, "SELECT status, workflow_id FROM bookings") == [("NO_SHOW", None)]
