"""Adoption of the marketplace's own booking rows, on the real API, Temporal and Postgres.

The database is the marketplace's: a seed-shaped `users` table and its legacy `bookings`
table with rows its app wrote (no wallets, no workflow), then our migrations. The customer's
payment request adopts a row: one workflow, the same row updated, terms from the directory.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import CUSTOMER, OTHER_CUSTOMER, OTHER_PROVIDER, PROVIDER, serve, token
from tests.db.legacy import LEGACY_DDL
from tests.db.seed_users import SEED_USERS_DDL, add_user
from workflows.client import BookingClient

pytestmark = pytest.mark.integration

INVITER = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
STRANGER = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"


@dataclass(frozen=True)
class World:
    """The marketplace's users (ids) and its booking rows (ids), written by its own app."""

    users: dict[str, uuid.UUID]
    bookings: dict[str, uuid.UUID]

    def auth(self, user: str, wallet: str) -> dict[str, str]:
        return token(str(self.users[user]), "customer", wallet)


# booking name -> (customer, provider, amount in whole USDC, status)
ROWS: dict[str, tuple[str, str, str, str]] = {
    "referred": ("carol", "pat", "25.5", "PENDING_PAYMENT"),
    "plain": ("dave", "pat", "10", "PENDING_PAYMENT"),
    "walletless_provider": ("carol", "quinn", "10", "PENDING_PAYMENT"),
    "unknown_provider": ("carol", "ghost", "10", "PENDING_PAYMENT"),
    "provider_referral": ("sam", "pat", "10", "PENDING_PAYMENT"),
    "self_referral": ("selma", "pat", "10", "PENDING_PAYMENT"),
    "unpayable_referrer": ("rita", "pat", "10", "PENDING_PAYMENT"),
    "paid": ("carol", "pat", "10", "PAID"),
    "inexact": ("carol", "pat", "1.2345678", "PENDING_PAYMENT"),
}


async def _marketplace(sessions: async_sessionmaker[AsyncSession]) -> World:
    users: dict[str, uuid.UUID] = {}
    users["ivy"] = await add_user(sessions, wallet=INVITER.lower())
    users["pat"] = await add_user(sessions, wallet=PROVIDER)
    users["quinn"] = await add_user(sessions)
    users["carol"] = await add_user(sessions, wallet=CUSTOMER, referred_by=users["ivy"])
    users["dave"] = await add_user(sessions, wallet=OTHER_CUSTOMER)
    users["sam"] = await add_user(sessions, wallet=OTHER_PROVIDER, referred_by=users["pat"])
    users["selma"] = await add_user(sessions, wallet=STRANGER)
    async with sessions.begin() as session:  # referred by herself, as a careless app allows
        await session.execute(
            text("UPDATE users SET referred_by = id WHERE id = :id"), {"id": users["selma"]}
        )
    users["rita"] = await add_user(sessions, wallet=STRANGER, referred_by=users["quinn"])
    users["ghost"] = uuid.uuid4()
    bookings = {name: uuid.uuid4() for name in ROWS}
    scheduled = datetime.now(UTC) + timedelta(days=3)
    async with sessions.begin() as session:
        for name, (customer, provider, amount, status) in ROWS.items():
            # The seed app's own INSERT: parties, amount, time, status; nothing of ours.
            await session.execute(
                text(
                    "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"
                    " amount, status) VALUES (:id, 'haircut', :customer, :provider, :at,"
                    " :amount, :status)"
                ),
                {
                    "id": bookings[name],
                    "customer": str(users[customer]),
                    "provider": str(users[provider]),
                    "at": scheduled,
                    "amount": Decimal(amount),
                    "status": status,
                },
            )
    return World(users=users, bookings=bookings)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    engine = make_engine(database_url, pool_size=1)
    try:
        sessions = make_session_factory(engine)
        async with sessions.begin() as session:
            for statement in (SEED_USERS_DDL, *LEGACY_DDL):
                await session.execute(text(statement))
        yield await _marketplace(sessions)
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated_db(database_url: str, world: World) -> str:
    """The marketplace's database with its rows, then our migrations (the API fixtures use it)."""
    await upgrade_async(database_url)
    return database_url


async def _rows(sessions: async_sessionmaker[AsyncSession], booking_id: uuid.UUID) -> list[Any]:
    async with sessions() as session:
        result = await session.execute(
            text(
                "SELECT id, customer_wallet, provider_wallet, inviter_wallet, amount_units, amount,"
                " workflow_id, platform_fee_bps, inviter_fee_bps, status FROM bookings"
                " WHERE id = :id"
            ),
            {"id": booking_id},
        )
        return list(result.mappings())


async def _started(temporal_client: Client, booking_id: uuid.UUID) -> bool:
    try:
        await BookingClient.for_booking(temporal_client, str(booking_id)).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _runs(temporal_client: Client, booking_id: uuid.UUID) -> int:
    """How many runs the booking's workflow id has had, once visibility lists the first."""
    query = f"WorkflowId = 'booking-{booking_id}'"
    for _ in range(100):
        runs = [run async for run in temporal_client.list_workflows(query)]
        if runs:
            return len(runs)
        await asyncio.sleep(0.1)
    return 0


async def test_the_seed_path_adopts_the_row_with_the_directory_terms_not_the_request(
    client: httpx.AsyncClient,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    temporal_client: Client,
) -> None:
    booking_id = world.bookings["referred"]
    async with sessions() as session:
        before = (await session.execute(text("SELECT count(*) FROM bookings"))).scalar_one()
    # Everything in the body is ignored: terms come from the row and the directory only.
    cheat = {"amount": "0.01", "provider_wallet": STRANGER, "inviter_wallet": STRANGER}
    response = await client.post(
        f"/api/bookings/{booking_id}/authorize-payment",
        json=cheat,
        headers=world.auth("carol", CUSTOMER),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    auth = body["authorization"]
    assert body["signature"].startswith("0x")
    assert len(body["signature"]) == 132
    assert (auth["customer"], auth["provider"], auth["inviter"]) == (CUSTOMER, PROVIDER, INVITER)
    assert auth["amount"] == "25500000"
    assert (auth["platformFeeRate"], auth["inviterFeeRate"]) == ("500", "500")

    (row,) = await _rows(sessions, booking_id)  # the same row, updated
    assert row["workflow_id"] == f"booking-{booking_id}"
    assert (row["customer_wallet"], row["provider_wallet"]) == (CUSTOMER, PROVIDER)
    assert (row["inviter_wallet"], row["amount_units"]) == (INVITER, 25_500_000)
    assert (row["platform_fee_bps"], row["inviter_fee_bps"]) == (500, 500)
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM bookings"))).scalar_one() == before

    # Now a managed booking: the canonical path answers the same authorization.
    again = await client.post(
        f"/bookings/{booking_id}/payment-authorization", headers=world.auth("carol", CUSTOMER)
    )
    assert again.status_code == 200, again.text
    assert again.json()["authorization"] == auth


async def test_two_replicas_adopting_at_once_start_one_workflow(
    factory: ApiFactory,
    worker: FakeChain,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    temporal_client: Client,
) -> None:
    booking_id = world.bookings["plain"]
    # The app's row as written after the migration: an `amount`, no `amount_units`.
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE bookings SET amount_units = NULL, amount = 10.000000 WHERE id = :id"),
            {"id": booking_id},
        )
    path = f"/bookings/{booking_id}/payment-authorization"
    headers = world.auth("dave", OTHER_CUSTOMER)
    async with serve(factory.app()) as one, serve(factory.app()) as two:
        first, second = await asyncio.gather(
            one.post(path, headers=headers), two.post(path, headers=headers)
        )
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    # One workflow answered both: the second got the first's authorization, reused.
    assert first.json() == second.json()
    auth = first.json()["authorization"]
    assert (auth["amount"], auth["inviter"]) == ("10000000", "0x" + "0" * 40)
    assert (auth["platformFeeRate"], auth["inviterFeeRate"]) == ("1000", "0")
    assert await _runs(temporal_client, booking_id) == 1
    (row,) = await _rows(sessions, booking_id)
    assert (row["amount_units"], row["customer_wallet"]) == (10_000_000, OTHER_CUSTOMER)
    async with sessions() as session:
        created = await session.execute(
            text("SELECT count(*) FROM booking_events WHERE booking_id = :id AND kind = 'created'"),
            {"id": booking_id},
        )
        assert created.scalar_one() == 1


async def test_every_refusal_names_what_is_wrong_and_starts_nothing(
    client: httpx.AsyncClient, factory: ApiFactory, world: World, temporal_client: Client
) -> None:
    carol = world.auth("carol", CUSTOMER)
    cases = [
        ("walletless_provider", carol, 409, "directory_missing", "provider_wallet"),
        ("unknown_provider", carol, 409, "directory_missing", "provider_id"),
        (
            "provider_referral",
            world.auth("sam", OTHER_PROVIDER),
            409,
            "self_referral",
            "inviter_wallet",
        ),
        ("self_referral", world.auth("selma", STRANGER), 409, "self_referral", "inviter_wallet"),
        (
            "unpayable_referrer",
            world.auth("rita", STRANGER),
            409,
            "directory_missing",
            "inviter_wallet",
        ),
        ("paid", carol, 409, "not_payable", "status"),
        ("inexact", carol, 409, "amount_not_exact", "amount"),
        # Not the customer, by id or by a wallet the directory lists for them.
        ("referred", world.auth("dave", OTHER_CUSTOMER), 403, "not_a_party", None),
        (
            "referred",
            token(str(world.users["carol"]), "provider", CUSTOMER),
            403,
            "not_a_party",
            None,
        ),
    ]
    for name, headers, status, code, field in cases:
        booking_id = world.bookings[name]
        response = await client.post(
            f"/bookings/{booking_id}/payment-authorization", headers=headers
        )
        assert response.status_code == status, (name, response.text)
        body = response.json()
        assert body["code"] == code, (name, body)
        if field is not None:
            assert [d["field"] for d in body["details"]] == [field], (name, body)
        assert not await _started(temporal_client, booking_id), name
    # Where proof is required, the paying wallet must be linked with SIWE first.
    async with serve(factory.app(settings={"require_wallet_proof": True})) as proving:
        booking_id = world.bookings["referred"]
        response = await proving.post(
            f"/bookings/{booking_id}/payment-authorization", headers=carol
        )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "wallet_not_proven"
    assert not await _started(temporal_client, booking_id)
