"""The marketplace's own `users` table in the seed's shape, and a way to add users to it."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Seed 001 keeps earnings counters on users; the referrer column and the identity provider's
# subject are the directory's defaults (`referred_by`, `privy_did`).
SEED_USERS_DDL = """
    CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        display_name text,
        wallet_address varchar(42),
        referred_by uuid REFERENCES users (id),
        privy_did text,
        total_earnings DECIMAL(12, 6) NOT NULL DEFAULT 0,
        completed_services integer NOT NULL DEFAULT 0,
        updated_at timestamp NOT NULL DEFAULT now()
    )
"""


async def create_seed_users(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await session.execute(text(SEED_USERS_DDL))


async def add_user(
    sessions: async_sessionmaker[AsyncSession],
    *,
    wallet: str | None = None,
    referred_by: uuid.UUID | None = None,
    subject: str | None = None,
) -> uuid.UUID:
    """Insert a user the way the marketplace's app does; returns its id."""
    async with sessions.begin() as session:
        result = await session.execute(
            text(
                "INSERT INTO users (display_name, wallet_address, referred_by, privy_did)"
                " VALUES ('someone', :wallet, :referred_by, :subject) RETURNING id"
            ),
            {"wallet": wallet, "referred_by": referred_by, "subject": subject},
        )
        user_id: uuid.UUID = result.scalar_one()
    return user_id
