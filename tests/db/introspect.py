"""Catalog snapshots of a database: what the migration tests compare."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from db.engine import make_engine

_QUERIES = {
    "tables": """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' ORDER BY 1
    """,
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length,
               numeric_precision, numeric_scale, is_nullable, column_default, udt_name
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid), convalidated
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2
    """,
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal ORDER BY 1, 2
    """,
    "functions": """
        SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1
    """,
    "sequences": """
        SELECT sequence_name, data_type FROM information_schema.sequences
        WHERE sequence_schema = 'public' ORDER BY 1
    """,
    "types": """
        SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype = 'e' ORDER BY 1
    """,
}


async def schema_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, constraints (with definitions), indexes, triggers, sequences, enums."""
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return {
                name: [tuple(row) for row in await conn.execute(text(sql))]
                for name, sql in _QUERIES.items()
            }
    finally:
        await engine.dispose()


async def fetch(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on a short-lived connection."""
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def execute(url: str, *statements: str) -> None:
    """Run statements in one committed transaction."""
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
