"""The SQL party directory over a seed-shaped `users` table in real Postgres, beside the
in-memory directory the other tests use: both answer the same questions the same way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.directory import DirectoryMissing, DirectoryUnavailable, PartyDirectory
from db.directory_memory import InMemoryDirectory
from db.directory_sql import DirectoryNames, SqlPartyDirectory
from db.engine import make_engine, make_session_factory
from tests.db.seed_users import add_user, create_seed_users

pytestmark = pytest.mark.integration

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
INVITER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, pool_size=2)
    try:
        factory = make_session_factory(engine)
        await create_seed_users(factory)
        yield factory
    finally:
        await engine.dispose()


async def test_users_wallets_and_the_referral_rule_from_the_seed_shaped_table(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    inviter = await add_user(sessions, wallet=INVITER.lower())
    customer = await add_user(sessions, wallet=CUSTOMER, referred_by=inviter, subject="did:privy:c")
    provider = await add_user(sessions, wallet=PROVIDER)
    walletless = await add_user(sessions)
    directory = SqlPartyDirectory(sessions)

    found = await directory.user(str(customer))
    assert found is not None
    assert found.user_id == str(customer)
    assert found.wallets == (CUSTOMER,)
    assert (await directory.user_for_subject("did:privy:c")) == found
    assert await directory.provider_wallet(str(provider)) == PROVIDER
    assert await directory.provider_wallet(str(walletless)) is None
    # Stored lower-case, answered checksummed.
    assert await directory.inviter_wallet(customer_id=str(customer), provider_id="x") == INVITER
    assert await directory.inviter_wallet(customer_id=str(provider), provider_id="x") is None


@pytest.mark.parametrize("implementation", ["sql", "memory"])
async def test_unknown_users_are_none_and_an_unpayable_referrer_is_named(
    sessions: async_sessionmaker[AsyncSession], implementation: str
) -> None:
    walletless = await add_user(sessions)
    referred = await add_user(sessions, wallet=CUSTOMER, referred_by=walletless)
    dangling = await add_user(sessions, wallet=PROVIDER)
    async with sessions.begin() as session:
        # A referrer that is no user (the marketplace's table has no such foreign key).
        await session.execute(text("ALTER TABLE users DROP CONSTRAINT users_referred_by_fkey"))
        await session.execute(
            text("UPDATE users SET referred_by = :gone WHERE id = :id"),
            {"gone": uuid.uuid4(), "id": dangling},
        )
    directory: PartyDirectory = SqlPartyDirectory(sessions)
    if implementation == "memory":
        memory = InMemoryDirectory()
        memory.add(str(walletless))
        memory.add(str(referred), wallets=(CUSTOMER,), referrer_id=str(walletless))
        memory.add(str(dangling), wallets=(PROVIDER,), referrer_id=str(uuid.uuid4()))
        directory = memory

    # Not a uuid at all: no user, not an error.
    for unknown in (str(uuid.uuid4()), "not-a-uuid", "1; DROP TABLE users"):
        assert await directory.user(unknown) is None
        assert await directory.provider_wallet(unknown) is None
        assert await directory.inviter_wallet(customer_id=unknown, provider_id="p") is None
    assert await directory.user_for_subject("did:privy:nobody") is None
    for customer in (referred, dangling):
        with pytest.raises(DirectoryMissing) as missing:
            await directory.inviter_wallet(customer_id=str(customer), provider_id="p")
        assert missing.value.field == "inviter_wallet"


async def test_a_subject_two_users_share_names_neither(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_user(sessions, wallet=CUSTOMER, subject="did:privy:twice")
    await add_user(sessions, wallet=PROVIDER, subject="did:privy:twice")
    assert await SqlPartyDirectory(sessions).user_for_subject("did:privy:twice") is None


async def test_names_come_from_settings_for_another_table_shape(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await session.execute(text("CREATE SCHEMA market"))
        await session.execute(
            text(
                "CREATE TABLE market.members (member_no bigint PRIMARY KEY, payout text,"
                " invited_by text)"
            )
        )
        await session.execute(
            text(
                "INSERT INTO market.members VALUES (1, :inviter, NULL), (2, :customer, '1'),"
                " (3, NULL, NULL)"
            ),
            {"inviter": INVITER, "customer": CUSTOMER},
        )
    names = DirectoryNames(
        table="market.members",
        id_column="member_no",
        wallet_column="payout",
        referrer_column="invited_by",
        subject_column="",
    )
    directory = SqlPartyDirectory(sessions, names)
    assert await directory.provider_wallet("1") == INVITER
    assert await directory.inviter_wallet(customer_id="2", provider_id="3") == INVITER
    assert await directory.user("abc") is None  # not a bigint
    assert await directory.user_for_subject("did:privy:x") is None  # no subject column
    no_referrals = SqlPartyDirectory(
        sessions, DirectoryNames(**{**names.__dict__, "referrer_column": ""})
    )
    assert await no_referrals.inviter_wallet(customer_id="2", provider_id="3") is None


@pytest.mark.parametrize(
    "names",
    [DirectoryNames(table="members"), DirectoryNames(wallet_column="payout_wallet")],
    ids=["no-table", "no-column"],
)
async def test_a_table_or_column_that_does_not_exist_is_unavailable_not_missing(
    sessions: async_sessionmaker[AsyncSession], names: DirectoryNames
) -> None:
    customer = await add_user(sessions, wallet=CUSTOMER)
    with pytest.raises(DirectoryUnavailable, match=r"BOOKME_DIRECTORY|does not exist"):
        await SqlPartyDirectory(sessions, names).user(str(customer))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("table", 'users"; DROP TABLE users; --'),
        ("table", "a.b.c"),
        ("id_column", "id OR 1=1"),
        ("wallet_column", ""),
        ("subject_column", "privy did"),
    ],
)
def test_names_must_be_plain_identifiers(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        DirectoryNames(**{field: value})
