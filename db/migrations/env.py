"""Alembic environment: async (asyncpg), URL handed in by db.migrate or `-x url=...`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db.base import Base
from db.migrate import MIGRATION_LOCK_KEY, VERSION_TABLE

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get(
        "url"
    )
    if not url:
        raise RuntimeError("no database URL: use db.migrate.upgrade(url) or `alembic -x url=...`")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        # Several replicas may migrate at start-up: the first one migrates, the others then
        # find the schema at head and do nothing.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_database_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    # The first migration inspects the live database (legacy `bookings` adoption).
    raise RuntimeError("offline (--sql) migrations are not supported")
_given = config.attributes.get("connection")
if _given is not None:
    # db.migrate.upgrade_async: already inside AsyncConnection.run_sync on the caller's loop.
    _run(_given)
else:
    asyncio.run(_run_online())
