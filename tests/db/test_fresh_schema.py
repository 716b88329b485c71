"""Migrations on an empty database: every table and constraint, models in step, re-runs, downgrade."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Index, UniqueConstraint, text
from sqlalchemy.engine import Connection

import db
from db.base import Base
from db.engine import make_engine
from db.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade_async,
    head_revision,
    upgrade,
    upgrade_async,
)
from tests.db.introspect import execute, fetch, schema_snapshot

pytestmark = pytest.mark.integration

TABLES = {
    "bookings",
    "booking_events",
    "blockchain_events",
    "signature_nonces",
    "platform_fees",
    "provider_earnings",
    "refunds",
    "chain_cursor",
    "recent_blocks",
    "rate_limit_counters",
    # 0003: webhooks to the marketplace
    "webhook_endpoints",
    "webhook_secrets",
    "webhook_outbox",
    "webhook_deliveries",
    "webhook_attempts",
}
BOOKKEEPING = {VERSION_TABLE, "bookme_schema_adoption"}
# 0004: identity (wallets proven with SIWE, their nonces, service API keys)
TABLES |= {"wallet_links", "siwe_nonces", "api_keys"}
# 0006: the transaction ledger (each sending key's nonces, every transaction before broadcast)
TABLES |= {"tx_nonces", "tx_ledger"}
# 0007: no table; a trigger announces every new booking_events row (NOTIFY booking_changes)
# 0008: relayed payments (the gas the platform paid for each)
TABLES |= {"relayed_payments"}
HEAD = "0008"


def _model_constraint_names() -> tuple[set[str], set[str]]:
    checks: set[str] = set()
    indexes: set[str] = set()
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint | UniqueConstraint):
                checks.add(str(constraint.name))
        for index in table.indexes:
            assert isinstance(index, Index)
            indexes.add(str(index.name))
    return checks, indexes


async def test_upgrade_creates_every_table_constraint_and_index(database_url):
    await upgrade_async(database_url)
    snapshot = await schema_snapshot(database_url)

    assert {row[0] for row in snapshot["tables"]} == TABLES | BOOKKEEPING
    model_constraints, model_indexes = _model_constraint_names()
    db_constraints = {row[1] for row in snapshot["constraints"] if row[2] in ("c", "u")}
    assert db_constraints == model_constraints
    db_indexes = {row[1] for row in snapshot["indexes"]}
    assert model_indexes <= db_indexes
    assert all(validated for *_, validated in snapshot["constraints"])
    assert await fetch(database_url, "SELECT version_num FROM bookme_alembic_version") == [(HEAD,)]


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        # Migration bookkeeping is not mapped on purpose.
        if not (diff[0] == "remove_table" and diff[1].name in BOOKKEEPING)
    ]


async def test_models_match_the_migrated_schema(migrated_url):
    engine = make_engine(migrated_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diffs == []


async def test_second_upgrade_changes_nothing(migrated_url):
    before = await schema_snapshot(migrated_url)
    await upgrade_async(migrated_url)
    assert await schema_snapshot(migrated_url) == before


async def test_downgrade_to_base_removes_everything_and_upgrade_rebuilds_it(migrated_url):
    built = await schema_snapshot(migrated_url)
    await downgrade_async(migrated_url, "base")
    emptied = await schema_snapshot(migrated_url)
    assert {row[0] for row in emptied["tables"]} == {VERSION_TABLE}
    assert emptied["sequences"] == []
    assert emptied["functions"] == []
    assert await fetch(migrated_url, "SELECT count(*) FROM bookme_alembic_version") == [(0,)]

    await upgrade_async(migrated_url)
    assert await schema_snapshot(migrated_url) == built


async def test_sync_upgrade_works_inside_a_running_event_loop(database_url):
    # The API's lifespan or a test may call the plain function from async code.
    upgrade(database_url)
    assert await fetch(database_url, "SELECT version_num FROM bookme_alembic_version") == [(HEAD,)]


async def test_current_revision_reports_none_then_head(database_url):
    assert await current_revision(database_url) is None
    await upgrade_async(database_url)
    assert await current_revision(database_url) == head_revision() == HEAD
    await downgrade_async(database_url, "base")
    assert await current_revision(database_url) is None


def _comparable(snapshot):
    """A snapshot without migration bookkeeping and without column positions."""
    return {
        "tables": [row for row in snapshot["tables"] if row[0] not in BOOKKEEPING],
        "columns": sorted(
            (row[0], row[1], *row[3:]) for row in snapshot["columns"] if row[0] not in BOOKKEEPING
        ),
        "constraints": [row for row in snapshot["constraints"] if row[0] not in BOOKKEEPING],
        "indexes": [row for row in snapshot["indexes"] if row[0] not in BOOKKEEPING],
        "sequences": snapshot["sequences"],
        "triggers": snapshot["triggers"],
        "functions": snapshot["functions"],
    }


async def test_models_create_exactly_the_migrated_schema(migrated_url, postgres):
    # Stronger than autogenerate's diff: check expressions, partial-index predicates and
    # defaults too, as Postgres itself prints them.
    from_models = postgres.create_database()
    engine = make_engine(from_models, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()
    assert _comparable(await schema_snapshot(from_models)) == _comparable(
        await schema_snapshot(migrated_url)
    )


async def test_concurrent_upgrades_in_one_process_take_turns(database_url):
    await asyncio.gather(*(upgrade_async(database_url) for _ in range(3)))
    assert await current_revision(database_url) == HEAD


async def test_concurrent_upgrades_from_several_processes_serialise(database_url):
    # Replicas starting together. To make them overlap for sure, a legacy table the
    # migration must alter is locked until all three are blocked; without the advisory
    # lock the followers would then collide on creating the same objects.
    await execute(database_url, "CREATE TABLE bookings (id uuid PRIMARY KEY, status text)")
    script = "import sys; from db.migrate import upgrade; upgrade(sys.argv[1])"
    engine = make_engine(database_url, pool_size=2)
    try:
        async with engine.connect() as holder:
            await holder.execute(text("LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE"))
            processes = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-c", script, database_url, stderr=asyncio.subprocess.PIPE
                )
                for _ in range(3)
            ]
            await _until_blocked(engine, count=3)
            await holder.commit()
        results = [await process.communicate() for process in processes]
    finally:
        await engine.dispose()
    assert [process.returncode for process in processes] == [0, 0, 0], results
    assert await current_revision(database_url) == HEAD
    assert await fetch(database_url, "SELECT count(*) FROM bookme_alembic_version") == [(1,)]


async def _until_blocked(engine, count):
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with engine.connect() as conn:
            if (await conn.execute(query)).scalar_one() >= count:
                return
        await asyncio.sleep(0.2)


async def test_alembic_command_line_works_from_any_directory(database_url, tmp_path):
    alembic = Path(sys.executable).with_name("alembic")
    ini = Path(db.__file__).with_name("alembic.ini")
    process = await asyncio.create_subprocess_exec(
        str(alembic),
        "-c",
        str(ini),
        "-x",
        f"url={database_url}",
        "upgrade",
        "head",
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    assert await current_revision(database_url) == head_revision()
