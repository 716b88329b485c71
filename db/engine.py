"""Async engine and session factory, built from a URL the caller passes in (no module globals)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(
    url: str, pool_size: int = 10, *, application_name: str | None = None, echo: bool = False
) -> AsyncEngine:
    """An asyncpg engine; `pool_pre_ping` so a restarted Postgres costs a retry, not an error.

    `application_name` (e.g. "bookme-api") shows in pg_stat_activity, so an operator can
    tell the API's connections from the worker's and the listener's.
    """
    server_settings = {"application_name": application_name} if application_name else {}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        echo=echo,
        connect_args={"server_settings": server_settings},
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (activities return them afterwards)."""
    return async_sessionmaker(engine, expire_on_commit=False)
