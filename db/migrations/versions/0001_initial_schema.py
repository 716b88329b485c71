"""Initial schema; adopts a pre-existing marketplace `bookings` table, additively.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Fresh database: every table is created. Database with a marketplace `bookings` table (id
UUID, service_id, customer_id, provider_id, scheduled_at, amount DECIMAL in whole USDC,
status, created_at, possibly the seeds' blockchain_* columns) that its own app keeps writing:
the table is adopted so that every INSERT and UPDATE the app ran before still runs after.

- Missing columns are added, each nullable or with a default; no legacy column is altered,
  except a `status` column that cannot hold our statuses (an enum, or narrower than the
  longest of them), which becomes VARCHAR(32) (an enum's labels are then kept as a CHECK on
  the marketplace's rows).
- No row is written: statuses stay as the app wrote them, `amount` is not converted. The
  statuses this service does not use are counted, logged and recorded in
  `bookme_schema_adoption.unknown_statuses` (`bookme unknown-statuses` lists them live).
- A row is the service's ("managed") when `workflow_id IS NOT NULL`: every ck_bookings_*
  check applies to managed rows only, so the app's rows are held to nothing new. A legacy
  CHECK on `status` that refuses one of our statuses is kept for the app's rows and
  exempts managed ones; one that admits them all is left exactly as it was.
- If a legacy `amount` column exists, a trigger mirrors `amount_units / 10^6` into it, so
  the app reads the right amount of a managed row and a NOT NULL `amount` takes our INSERTs.
- Refused up front, nothing changed: a legacy `id` that is not uuid, a legacy `workflow_id`.
- Seed-era `blockchain_events` / `signature_nonces` / `platform_fees` tables of another
  shape are renamed `<name>_legacy` (their writer, the seed's event processor, is what this
  service replaces).

What was added or changed is recorded in `bookme_schema_adoption`, which downgrade reads to
put the legacy table back exactly: added columns, constraints, indexes and trigger dropped,
guarded checks and the status type restored, every row kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

STATUSES = (
    "PENDING_PAYMENT",
    "PAID",
    "PENDING_COMPLETION",
    "COMPLETED",
    "PENDING_CANCELLATION",
    "CANCELLED",
    "FAILED",
)
STATUS_SQL = ", ".join(f"'{status}'" for status in STATUSES)
ADDRESS_RE = "^0x[0-9a-fA-F]{40}$"
SEED_ERA_TABLES = ("blockchain_events", "signature_nonces", "platform_fees")
MIRROR_FUNCTION = "bookme_bookings_mirror_legacy_amount"
MIRROR_TRIGGER = "bookme_bookings_mirror_legacy_amount"

# A row is the service's own once a workflow owns it; the marketplace's rows have no
# workflow_id (the app does not know the column). Every ck_bookings_* check is guarded by it.
MANAGED = "workflow_id IS NOT NULL"
UNMANAGED = "workflow_id IS NULL"
# The narrowest varchar that holds every status of ours (PENDING_CANCELLATION).
STATUS_WIDTH = max(len(status) for status in STATUSES)
UNKNOWN_STATUS = f"(status IS NULL OR status NOT IN ({STATUS_SQL}))"
LEGACY_STATUS_VALUES_CHECK = "ck_bookings_legacy_status_values"


# A NamedTuple, not a dataclass: Alembic loads this file outside sys.modules.
class Column(NamedTuple):
    name: str
    type: str
    fresh: str = ""  # constraints when the table is created here
    adopt: str = ""  # constraints when added to a legacy table that holds rows


BOOKING_COLUMNS = (
    Column(name="id", type="uuid", fresh="NOT NULL DEFAULT gen_random_uuid()"),
    Column(name="service_id", type="text", fresh="NOT NULL"),
    Column(name="customer_id", type="text", fresh="NOT NULL"),
    Column(name="provider_id", type="text", fresh="NOT NULL"),
    Column(name="customer_wallet", type="varchar(42)"),
    Column(name="provider_wallet", type="varchar(42)"),
    Column(name="inviter_wallet", type="varchar(42)"),
    Column(name="amount_units", type="numeric(78,0)"),
    Column(name="scheduled_at", type="timestamptz", fresh="NOT NULL"),
    # Added without a default to a table that lacks it: the app's rows have no status of
    # ours, and the service always writes one.
    Column(name="status", type="varchar(32)", fresh="NOT NULL DEFAULT 'PENDING_PAYMENT'"),
    Column(name="status_reason", type="text"),
    Column(name="blockchain_booking_id", type="varchar(66)"),
    Column(name="blockchain_tx_hash", type="varchar(66)"),
    Column(name="blockchain_confirmed_at", type="timestamptz"),
    Column(name="completion_tx_hash", type="varchar(66)"),
    Column(name="cancellation_tx_hash", type="varchar(66)"),
    Column(name="blockchain_data", type="jsonb"),
    Column(name="platform_fee_bps", type="integer"),
    Column(name="inviter_fee_bps", type="integer"),
    Column(name="workflow_id", type="text"),
    Column(name="idempotency_key", type="text"),
    Column(name="request_hash", type="text"),
    Column(name="version", type="integer", fresh="NOT NULL DEFAULT 1", adopt="NOT NULL DEFAULT 1"),
    Column(
        name="created_at",
        type="timestamptz",
        fresh="NOT NULL DEFAULT now()",
        adopt="NOT NULL DEFAULT now()",
    ),
    Column(
        name="updated_at",
        type="timestamptz",
        fresh="NOT NULL DEFAULT now()",
        adopt="NOT NULL DEFAULT now()",
    ),
)


def _address_ok(column: str) -> str:
    return f"{column} IS NULL OR {column} ~ '{ADDRESS_RE}'"


def _managed_only(rule: str) -> str:
    return f"{UNMANAGED} OR ({rule})"


BOOKING_CHECKS = {
    name: _managed_only(rule)
    for name, rule in {
        "ck_bookings_status": f"status IS NOT NULL AND status IN ({STATUS_SQL})",
        "ck_bookings_amount_units_positive": "amount_units > 0",
        "ck_bookings_fee_bps_range": (
            "platform_fee_bps BETWEEN 0 AND 10000 AND inviter_fee_bps BETWEEN 0 AND 10000"
            " AND platform_fee_bps + inviter_fee_bps <= 10000"
        ),
        "ck_bookings_inviter_fee_needs_wallet": "inviter_wallet IS NOT NULL OR inviter_fee_bps = 0",
        "ck_bookings_customer_wallet_format": _address_ok("customer_wallet"),
        "ck_bookings_provider_wallet_format": _address_ok("provider_wallet"),
        "ck_bookings_inviter_wallet_format": _address_ok("inviter_wallet"),
        "ck_bookings_version_positive": "version >= 1",
        "ck_bookings_required": (
            "service_id IS NOT NULL AND customer_id IS NOT NULL"
            " AND provider_id IS NOT NULL AND scheduled_at IS NOT NULL"
            " AND customer_wallet IS NOT NULL AND provider_wallet IS NOT NULL"
            " AND amount_units IS NOT NULL AND platform_fee_bps IS NOT NULL"
            " AND inviter_fee_bps IS NOT NULL"
        ),
    }.items()
}

BOOKING_INDEXES = {
    "uq_bookings_blockchain_booking_id": (
        "CREATE UNIQUE INDEX uq_bookings_blockchain_booking_id ON bookings (blockchain_booking_id)"
        " WHERE blockchain_booking_id IS NOT NULL"
    ),
    "uq_bookings_idempotency_key": (
        "CREATE UNIQUE INDEX uq_bookings_idempotency_key ON bookings (idempotency_key)"
        " WHERE idempotency_key IS NOT NULL"
    ),
    "ix_bookings_status_scheduled_at": "CREATE INDEX ix_bookings_status_scheduled_at ON bookings (status, scheduled_at)",
    "ix_bookings_customer_wallet_created_at_id": (
        "CREATE INDEX ix_bookings_customer_wallet_created_at_id ON bookings (customer_wallet, created_at, id)"
        " WHERE customer_wallet IS NOT NULL"
    ),
    "ix_bookings_provider_wallet_created_at_id": (
        "CREATE INDEX ix_bookings_provider_wallet_created_at_id ON bookings (provider_wallet, created_at, id)"
        " WHERE provider_wallet IS NOT NULL"
    ),
    "ix_bookings_created_at_id": "CREATE INDEX ix_bookings_created_at_id ON bookings (created_at, id)",
    "ix_bookings_blockchain_tx_hash": "CREATE INDEX ix_bookings_blockchain_tx_hash ON bookings (blockchain_tx_hash)",
}

# Leg columns shared by the money tables, each row written from one chain event.
EVENT_IDENTITY = """
    chain_id bigint NOT NULL,
    tx_hash varchar(66) NOT NULL,
    log_index integer NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    reverted_at timestamptz
"""

NEW_TABLES = (
    f"""
    CREATE TABLE booking_events (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        booking_id uuid NOT NULL,
        from_status varchar(32),
        to_status varchar(32),
        kind varchar(64) NOT NULL,
        reason text,
        actor text NOT NULL DEFAULT 'system',
        chain_id bigint,
        tx_hash varchar(66),
        log_index integer,
        dedupe_key text,
        details jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_booking_events PRIMARY KEY (id),
        CONSTRAINT fk_booking_events_booking_id_bookings FOREIGN KEY (booking_id) REFERENCES bookings (id),
        CONSTRAINT ck_booking_events_from_status CHECK (from_status IS NULL OR from_status IN ({STATUS_SQL})),
        CONSTRAINT ck_booking_events_to_status CHECK (to_status IS NULL OR to_status IN ({STATUS_SQL})),
        CONSTRAINT ck_booking_events_kind_not_empty CHECK (kind <> ''),
        CONSTRAINT ck_booking_events_log_index_non_negative CHECK (log_index IS NULL OR log_index >= 0)
    )
    """,
    """
    CREATE UNIQUE INDEX uq_booking_events_booking_id_dedupe_key ON booking_events (booking_id, dedupe_key)
        WHERE dedupe_key IS NOT NULL
    """,
    "CREATE INDEX ix_booking_events_booking_id_id ON booking_events (booking_id, id)",
    """
    CREATE TABLE blockchain_events (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        chain_id bigint NOT NULL,
        tx_hash varchar(66) NOT NULL,
        log_index integer NOT NULL,
        block_number bigint NOT NULL,
        block_hash varchar(66) NOT NULL,
        contract_address varchar(42) NOT NULL,
        event_type varchar(64) NOT NULL,
        chain_booking_id varchar(66),
        booking_id uuid,
        payload jsonb NOT NULL DEFAULT '{}'::jsonb,
        status varchar(32) NOT NULL DEFAULT 'RECEIVED',
        status_reason text,
        retry_count integer NOT NULL DEFAULT 0,
        received_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz,
        CONSTRAINT pk_blockchain_events PRIMARY KEY (id),
        CONSTRAINT uq_blockchain_events_chain_id_tx_hash_log_index UNIQUE (chain_id, tx_hash, log_index),
        CONSTRAINT fk_blockchain_events_booking_id_bookings FOREIGN KEY (booking_id) REFERENCES bookings (id),
        CONSTRAINT ck_blockchain_events_status CHECK (status IN ('RECEIVED', 'PROCESSED', 'REORGED', 'FAILED')),
        CONSTRAINT ck_blockchain_events_retry_count_non_negative CHECK (retry_count >= 0),
        CONSTRAINT ck_blockchain_events_position_non_negative CHECK (log_index >= 0 AND block_number >= 0)
    )
    """,
    "CREATE INDEX ix_blockchain_events_status_received_at ON blockchain_events (status, received_at)",
    "CREATE INDEX ix_blockchain_events_chain_booking_id ON blockchain_events (chain_booking_id)",
    "CREATE INDEX ix_blockchain_events_chain_id_block_number ON blockchain_events (chain_id, block_number)",
    "CREATE INDEX ix_blockchain_events_booking_id ON blockchain_events (booking_id)",
    # Nonces come from a sequence: unique without a retry loop, and gaps are harmless.
    "CREATE SEQUENCE signature_nonce_seq AS bigint START WITH 1",
    """
    CREATE TABLE signature_nonces (
        nonce numeric(78,0) NOT NULL DEFAULT nextval('signature_nonce_seq'),
        booking_id uuid NOT NULL,
        kind varchar(16) NOT NULL,
        expires_at timestamptz NOT NULL,
        "authorization" jsonb,
        signature text,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_signature_nonces PRIMARY KEY (nonce),
        CONSTRAINT fk_signature_nonces_booking_id_bookings FOREIGN KEY (booking_id) REFERENCES bookings (id),
        CONSTRAINT ck_signature_nonces_kind CHECK (kind IN ('booking', 'cancellation')),
        CONSTRAINT ck_signature_nonces_nonce_non_negative CHECK (nonce >= 0)
    )
    """,
    "CREATE INDEX ix_signature_nonces_booking_id_kind ON signature_nonces (booking_id, kind)",
    f"""
    CREATE TABLE platform_fees (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        booking_id uuid NOT NULL,
        platform_amount_units numeric(78,0) NOT NULL,
        inviter_amount_units numeric(78,0) NOT NULL DEFAULT 0,
        inviter_wallet varchar(42),
        {EVENT_IDENTITY},
        CONSTRAINT pk_platform_fees PRIMARY KEY (id),
        CONSTRAINT uq_platform_fees_chain_id_tx_hash_log_index UNIQUE (chain_id, tx_hash, log_index),
        CONSTRAINT fk_platform_fees_booking_id_bookings FOREIGN KEY (booking_id) REFERENCES bookings (id),
        CONSTRAINT ck_platform_fees_amounts_non_negative
            CHECK (platform_amount_units >= 0 AND inviter_amount_units >= 0),
        CONSTRAINT ck_platform_fees_inviter_wallet_format CHECK ({_address_ok("inviter_wallet")})
    )
    """,
    """
    CREATE UNIQUE INDEX uq_platform_fees_booking_id_live ON platform_fees (booking_id)
        WHERE reverted_at IS NULL
    """,
    f"""
    CREATE TABLE provider_earnings (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        booking_id uuid NOT NULL,
        provider_wallet varchar(42) NOT NULL,
        amount_units numeric(78,0) NOT NULL,
        {EVENT_IDENTITY},
        CONSTRAINT pk_provider_earnings PRIMARY KEY (id),
        CONSTRAINT uq_provider_earnings_chain_id_tx_hash_log_index UNIQUE (chain_id, tx_hash, log_index),
        CONSTRAINT fk_provider_earnings_booking_id_bookings FOREIGN KEY (booking_id) REFERENCES bookings (id),
        CONSTRAINT ck_provider_earnings_amount_units_non_negative CHECK (amount_units >= 0),
        CONSTRAINT ck_provider_earnings_provider_wallet_format CHECK ({_address_ok("provider_wallet")})
    )
    """,
    """
    CREATE UNIQUE INDEX uq_provider_earnings_booking_id_live ON provider_earnings (booking_id)
        WHERE reverted_at IS NULL
    """,
    "CREATE INDEX ix_provider_earnings_provider_wallet ON provider_earnings (provider_wallet)",
    f"""
    CREATE TABLE refunds (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        booking_id uuid NOT NULL,
        customer_amount_units numeric(78,0) NOT NULL,
        provider_amount_units numeric(78,0) NOT NULL DEFAULT 0,
        platform_amount_units numeric(78,0) NOT NULL DEFAULT 0,
        inviter_amount_units numeric(78,0) NOT NULL DEFAULT 0,
        emergency boolean NOT NULL DEFAULT false,
        {EVENT_IDENTITY},
        CONSTRAINT pk_refunds PRIMARY KEY (id),
        CONSTRAINT uq_refunds_chain_id_tx_hash_log_index UNIQUE (chain_id, tx_hash, log_index),
        CONSTRAINT fk_refunds_booking_id_bookings FOREIGN KEY (booking_id) REFERENCES bookings (id),
        CONSTRAINT ck_refunds_amounts_non_negative CHECK (
            customer_amount_units >= 0 AND provider_amount_units >= 0
            AND platform_amount_units >= 0 AND inviter_amount_units >= 0
        )
    )
    """,
    "CREATE UNIQUE INDEX uq_refunds_booking_id_live ON refunds (booking_id) WHERE reverted_at IS NULL",
    """
    CREATE TABLE chain_cursor (
        chain_id bigint NOT NULL,
        contract_address varchar(42) NOT NULL,
        last_block_number bigint NOT NULL,
        last_block_hash varchar(66) NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_chain_cursor PRIMARY KEY (chain_id, contract_address),
        CONSTRAINT ck_chain_cursor_block_non_negative CHECK (last_block_number >= 0)
    )
    """,
    """
    CREATE TABLE recent_blocks (
        chain_id bigint NOT NULL,
        contract_address varchar(42) NOT NULL,
        block_number bigint NOT NULL,
        block_hash varchar(66) NOT NULL,
        CONSTRAINT pk_recent_blocks PRIMARY KEY (chain_id, contract_address, block_number),
        CONSTRAINT ck_recent_blocks_block_non_negative CHECK (block_number >= 0)
    )
    """,
    """
    CREATE TABLE rate_limit_counters (
        key text NOT NULL,
        window_start timestamptz NOT NULL,
        count integer NOT NULL DEFAULT 0,
        CONSTRAINT pk_rate_limit_counters PRIMARY KEY (key, window_start),
        CONSTRAINT ck_rate_limit_counters_count_non_negative CHECK (count >= 0)
    )
    """,
    "CREATE INDEX ix_rate_limit_counters_window_start ON rate_limit_counters (window_start)",
)

NEW_TABLE_NAMES = (
    "refunds",
    "provider_earnings",
    "platform_fees",
    "signature_nonces",
    "blockchain_events",
    "booking_events",
    "recent_blocks",
    "chain_cursor",
    "rate_limit_counters",
)


def _scalar(sql: str, **params: object) -> object:
    return op.get_bind().execute(sa.text(sql), params).scalar()


def _table_exists(name: str) -> bool:
    return bool(_scalar("SELECT to_regclass(:name) IS NOT NULL", name=f"public.{name}"))


def _columns(table: str) -> dict[str, str]:
    """Column name -> format_type, e.g. {'status': 'character varying(20)'}."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        {"table": f"public.{table}"},
    )
    return {str(name): str(type_) for name, type_ in rows}


def _create_adoption_table() -> None:
    op.execute(
        """
        CREATE TABLE bookme_schema_adoption (
            table_name text NOT NULL,
            added_columns text[] NOT NULL,
            original_status_type text,
            guarded_status_checks text[] NOT NULL DEFAULT '{}',
            guarded_status_check_definitions text[] NOT NULL DEFAULT '{}',
            legacy_rows bigint NOT NULL,
            unknown_statuses jsonb NOT NULL DEFAULT '[]'::jsonb,
            renamed_tables text[] NOT NULL DEFAULT '{}',
            adopted_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_bookme_schema_adoption PRIMARY KEY (table_name)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE bookme_schema_adoption IS 'what migration 0001 changed in pre-existing tables'"
    )


def _rename_seed_era_tables() -> list[str]:
    renamed = []
    for name in SEED_ERA_TABLES:
        if _table_exists(name):
            if _table_exists(f"{name}_legacy"):
                raise RuntimeError(f"both {name} and {name}_legacy exist; move one aside first")
            op.execute(f"ALTER TABLE {name} RENAME TO {name}_legacy")
            renamed.append(name)
    return renamed


def _create_bookings() -> None:
    columns = ",\n".join(f"{c.name} {c.type} {c.fresh}".rstrip() for c in BOOKING_COLUMNS)
    op.execute(f"CREATE TABLE bookings (\n{columns},\nCONSTRAINT pk_bookings PRIMARY KEY (id)\n)")


def _adopt_bookings(renamed: list[str]) -> None:
    existing = _columns("bookings")
    if existing.get("id") != "uuid":
        # Every new table references bookings(id) as uuid; fail before touching anything.
        raise RuntimeError(f"legacy bookings.id is {existing.get('id', 'missing')}, expected uuid")
    if "workflow_id" in existing:
        # Its non-NULL values would make the marketplace's rows count as the service's.
        raise RuntimeError(
            "legacy bookings already has a workflow_id column, which this service uses to mark"
            " the rows it manages; rename it first"
        )
    added = [c.name for c in BOOKING_COLUMNS if c.name not in existing]
    if added:
        # One statement: Postgres then checks the table once, and no column needs a rewrite.
        op.execute(
            "ALTER TABLE bookings "
            + ", ".join(
                f"ADD COLUMN {c.name} {c.type} {c.adopt}".rstrip()
                for c in BOOKING_COLUMNS
                if c.name in added
            )
        )

    # A legacy CHECK on status that refuses one of ours: dropped here, put back below with
    # managed rows exempt (the app's rows are held to it exactly as before).
    guarded = [(name, d) for name, d in _legacy_status_checks() if not _admits_our_statuses(d)]
    for name, _ in guarded:
        op.execute(f"ALTER TABLE bookings DROP CONSTRAINT {_quote(name)}")

    original_status_type = None
    status_type = existing.get("status", "character varying(32)")
    if status_type != "text" and not _wide_enough_varchar(status_type):
        original_status_type = status_type
        labels = _enum_labels(status_type)
        # A shorter varchar widens in place; an enum or char column must be rewritten.
        using = "" if status_type.startswith("character varying") else " USING status::text"
        op.execute(f"ALTER TABLE bookings ALTER COLUMN status TYPE varchar(32){using}")
        if labels:
            # The enum refused anything else from the app: so does this check, on its rows.
            values = ", ".join(_literal(label) for label in labels)
            op.execute(
                f"ALTER TABLE bookings ADD CONSTRAINT {LEGACY_STATUS_VALUES_CHECK}"
                f" CHECK ({MANAGED} OR status IN ({values}))"
            )
    for name, definition in guarded:
        op.execute(f"ALTER TABLE bookings ADD CONSTRAINT {_quote(name)} {_guarded(definition)}")

    legacy_rows = int(str(_scalar("SELECT count(*) FROM bookings")))
    unknown = _unknown_statuses()
    if "amount" in existing:
        _mirror_into_legacy_amount()

    op.get_bind().execute(
        sa.text(
            "INSERT INTO bookme_schema_adoption (table_name, added_columns, original_status_type,"
            " guarded_status_checks, guarded_status_check_definitions,"
            " legacy_rows, unknown_statuses, renamed_tables)"
            " VALUES ('bookings', :added, :status_type, :check_names, :check_definitions,"
            " :rows, CAST(:unknown AS jsonb), :renamed)"
        ),
        {
            "added": added,
            "status_type": original_status_type,
            "check_names": [name for name, _ in guarded],
            "check_definitions": [definition for _, definition in guarded],
            "rows": legacy_rows,
            "unknown": json.dumps([{"status": s, "rows": n} for s, n in unknown]),
            "renamed": renamed,
        },
    )
    log.info(
        "adopted the marketplace's bookings table: %d rows kept as they are, %d columns added,"
        " %d legacy status checks now exempt managed rows",
        legacy_rows,
        len(added),
        len(guarded),
    )
    if unknown:
        log.warning(
            "bookings: %d rows hold a status this service does not use, kept unchanged: %s"
            " (the service never acts on them; list them with `bookme unknown-statuses`)",
            sum(n for _, n in unknown),
            ", ".join(f"{'NULL' if s is None else repr(s)} x{n}" for s, n in unknown),
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _legacy_status_checks() -> list[tuple[str, str]]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = 'status'"
            " WHERE c.conrelid = CAST('public.bookings' AS regclass) AND c.contype = 'c'"
            " AND a.attnum = ANY (c.conkey) ORDER BY c.conname"
        )
    )
    return [(str(name), str(definition)) for name, definition in rows]


def _check_parts(definition: str) -> tuple[str, bool]:
    """`CHECK (<expr>)[ NOT VALID]` -> ("(<expr>)", not_valid)."""
    body = definition.removesuffix(" NOT VALID")
    if not body.startswith("CHECK (") or not body.endswith(")") or "NO INHERIT" in body:
        raise RuntimeError(f"unexpected legacy CHECK on bookings.status: {definition}")
    return body[len("CHECK ") :], body != definition


def _admits_our_statuses(definition: str) -> bool:
    """Whether the check lets every status of ours through, judged on `status` alone.

    A check that reads other columns too, or one this probe cannot evaluate, counts as
    refusing: it is then guarded, which keeps it for the app's rows all the same.
    """
    expression, _ = _check_parts(definition)
    values = ", ".join(f"({_literal(status)})" for status in STATUSES)
    probe = (
        f"SELECT bool_and(coalesce({expression}, true)) FROM (VALUES {values}) AS bookings(status)"  # noqa: S608
    )
    savepoint = op.get_bind().begin_nested()
    try:
        admitted = bool(op.get_bind().execute(sa.text(probe)).scalar())
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return admitted


def _guarded(definition: str) -> str:
    expression, not_valid = _check_parts(definition)
    return f"CHECK ({expression} OR {MANAGED})" + (" NOT VALID" if not_valid else "")


def _enum_labels(type_: str) -> list[str]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = CAST(:type AS regtype)"
            " ORDER BY e.enumsortorder"
        ),
        {"type": type_},
    )
    return [str(label) for (label,) in rows]


def _wide_enough_varchar(type_: str) -> bool:
    prefix = "character varying("
    if type_ == "character varying":
        return True
    return type_.startswith(prefix) and int(type_[len(prefix) : -1]) >= STATUS_WIDTH


def _unknown_statuses() -> list[tuple[str | None, int]]:
    """Statuses in the table that are not ours, most frequent first (NULL as None)."""
    rows = op.get_bind().execute(
        sa.text(
            f"SELECT status::text, count(*) FROM bookings WHERE {UNKNOWN_STATUS}"  # noqa: S608
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    )
    return [(None if status is None else str(status), int(n)) for status, n in rows]


def _mirror_into_legacy_amount() -> None:
    op.execute(
        f"""
        CREATE FUNCTION {MIRROR_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.amount_units IS NOT NULL THEN
                NEW.amount := NEW.amount_units / 1000000.0;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {MIRROR_TRIGGER} BEFORE INSERT OR UPDATE OF amount_units ON bookings"
        f" FOR EACH ROW EXECUTE FUNCTION {MIRROR_FUNCTION}()"
    )


def _add_booking_checks() -> None:
    """Every check in one ALTER (one scan); existing rows pass, none of them is managed yet."""
    op.execute(
        "ALTER TABLE bookings "
        + ", ".join(
            f"ADD CONSTRAINT {name} CHECK ({expression})"
            for name, expression in BOOKING_CHECKS.items()
        )
    )


def upgrade() -> None:
    _create_adoption_table()
    renamed = _rename_seed_era_tables()
    if _table_exists("bookings"):
        _adopt_bookings(renamed)
    else:
        _create_bookings()
    _add_booking_checks()
    for statement in BOOKING_INDEXES.values():
        op.execute(statement)
    for statement in NEW_TABLES:
        op.execute(statement)


def downgrade() -> None:
    for name in NEW_TABLE_NAMES:
        op.execute(f"DROP TABLE {name}")
    op.execute("DROP SEQUENCE signature_nonce_seq")
    row = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT added_columns, original_status_type, renamed_tables, guarded_status_checks,"
                " guarded_status_check_definitions"
                " FROM bookme_schema_adoption WHERE table_name = 'bookings'"
            )
        )
        .one_or_none()
    )
    if row is None:
        op.execute("DROP TABLE bookings")
    else:
        added, original_status_type, renamed, check_names, check_definitions = row
        _restore_legacy_bookings(list(added), original_status_type)
        for name, definition in zip(check_names, check_definitions, strict=True):
            _restore_check(name, definition)
        for name in renamed:
            op.execute(f"ALTER TABLE {name}_legacy RENAME TO {name}")
    op.execute("DROP TABLE bookme_schema_adoption")


def _restore_legacy_bookings(added: list[str], original_status_type: str | None) -> None:
    for name in (*BOOKING_CHECKS, LEGACY_STATUS_VALUES_CHECK):
        op.execute(f"ALTER TABLE bookings DROP CONSTRAINT IF EXISTS {name}")
    for name in BOOKING_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute(f"DROP TRIGGER IF EXISTS {MIRROR_TRIGGER} ON bookings")
    op.execute(f"DROP FUNCTION IF EXISTS {MIRROR_FUNCTION}()")
    if original_status_type is not None and "status" not in added:
        op.execute(
            f"ALTER TABLE bookings ALTER COLUMN status TYPE {original_status_type}"
            f" USING status::{original_status_type}"
        )
    for name in reversed(added):
        op.execute(f"ALTER TABLE bookings DROP COLUMN {name}")


def _restore_check(name: str, definition: str) -> None:
    """The legacy check as it was; NOT VALID if rows the service wrote meanwhile break it."""
    op.execute(f"ALTER TABLE bookings DROP CONSTRAINT IF EXISTS {_quote(name)}")
    expression, not_valid = _check_parts(definition)
    broken = not not_valid and bool(
        _scalar(f"SELECT EXISTS (SELECT FROM bookings WHERE NOT {expression})")  # noqa: S608
    )
    if broken:
        log.warning("rows written since adoption break %s: restored NOT VALID", name)
    op.execute(
        f"ALTER TABLE bookings ADD CONSTRAINT {_quote(name)} CHECK {expression}"
        + (" NOT VALID" if not_valid or broken else "")
    )
