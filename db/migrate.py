"""Run the Alembic migrations from Python: `upgrade(url)` / `downgrade(url, revision)`.

Works from any working directory (the ini file sits beside this module) and from inside a
running event loop (the migration then runs on its own thread with its own loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# Own version table: an adopted legacy database may already use `alembic_version`.
VERSION_TABLE = "bookme_alembic_version"
# pg_advisory_xact_lock key serialising migrators across processes ("bookmedb" in ASCII).
MIGRATION_LOCK_KEY = 0x626F6F6B6D656462
# Alembic's `op`/`context` are process-wide proxies: two migrations on two threads of one
# process would run each other's statements, so in-process runs take turns.
_IN_PROCESS = threading.Lock()


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this project's migrations against `database_url`."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    return config


def _outside_event_loop(command_run: Callable[[], None]) -> None:
    def run() -> None:
        with _IN_PROCESS:
            command_run()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    # env.py calls asyncio.run(), which refuses to nest in a running loop. Async callers
    # should prefer upgrade_async, which stays on their loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`; a no-op when it is already there."""
    _outside_event_loop(lambda: command.upgrade(alembic_config(database_url), revision))


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema down to `revision` ("base" removes everything the migrations added)."""
    _outside_event_loop(lambda: command.downgrade(alembic_config(database_url), revision))


# Alembic's context is process-global: migrations on one loop take turns too.
_LOOP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def _on_this_loop(database_url: str, run: Callable[[Config], None]) -> None:
    # On the caller's loop, through one AsyncConnection: no second loop on another thread
    # (asyncpg + greenlet across two loops and threads crashed the interpreter here).
    loop = asyncio.get_running_loop()
    lock = _LOOP_LOCKS.setdefault(loop, asyncio.Lock())
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with lock, engine.begin() as connection:

            def migrate(sync_connection: Connection) -> None:
                config = alembic_config(database_url)
                config.attributes["connection"] = sync_connection
                with _IN_PROCESS:
                    run(config)

            await connection.run_sync(migrate)
    finally:
        await engine.dispose()


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """`upgrade` on the caller's event loop."""
    await _on_this_loop(database_url, lambda config: command.upgrade(config, revision))


async def downgrade_async(database_url: str, revision: str) -> None:
    """`downgrade` on the caller's event loop."""
    await _on_this_loop(database_url, lambda config: command.downgrade(config, revision))


def head_revision() -> str:
    """The revision `upgrade(url)` brings a database to."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


async def current_revision(database_url: str) -> str | None:
    """The database's schema revision, or None if it was never migrated (readiness checks)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(
                    sync, opts={"version_table": VERSION_TABLE}
                ).get_current_revision()
            )
    finally:
        await engine.dispose()
