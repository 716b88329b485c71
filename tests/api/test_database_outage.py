"""A Postgres that drops or refuses our connections is an outage (503), not a bug (500)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.errors import is_database_outage
from db.engine import make_engine

pytestmark = pytest.mark.integration


async def _error_from(database_url: str, sql: str) -> DBAPIError:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text(sql))
        return caught.value
    finally:
        await engine.dispose()


async def test_a_terminated_connection_is_an_outage(database_url):
    # What every open connection sees while Postgres restarts: 57P01 admin shutdown.
    error = await _error_from(database_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert is_database_outage(error)


async def test_a_server_refusing_connections_is_an_outage(database_url):
    # 57P03 "the database system is shutting down / starting up" comes as a raised SQLSTATE.
    error = await _error_from(
        database_url,
        "DO $$ BEGIN RAISE EXCEPTION 'the database system is shutting down'"
        " USING ERRCODE = '57P03'; END $$",
    )
    assert is_database_outage(error)


async def test_a_bad_query_is_not_an_outage(database_url):
    error = await _error_from(database_url, "SELECT 1 / 0")
    assert not is_database_outage(error)
