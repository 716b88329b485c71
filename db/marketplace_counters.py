"""The marketplace's own earnings counters: `users.total_earnings` and `completed_services`.

The seed's event processor adds each completion's provider share (whole USDC, DECIMAL) to
`users.total_earnings` and 1 to `users.completed_services` of the booking's provider
(`users.id = bookings.provider_id`). This service replaces that processor, so it keeps those
counters where the database has them: in the transaction that records the booking's
`provider_earnings` row, once per earning (`provider_earnings.marketplace_counted_at` marks
it counted, so recording the same completion event again moves nothing), and back out when a
reorg reverts the earning (a re-included completion then counts once more).

Whether the columns exist is looked up once per store, on its first transition: a database
without them (a plain deployment) costs nothing after that. Columns added later are seen
after a restart, and count from then on. Cancellation shares are not counted (nor were they
in the seed).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, localcontext

import structlog
from sqlalchemy import Integer, Numeric, String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

log = structlog.get_logger(__name__)

USDC_DECIMALS = 6
USERS_TABLE = "users"
# A type name as format_type prints it (uuid, integer, character varying(64), ...).
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_ ]*(\(\d+(,\d+)?\))?$")

# Live earnings not yet counted, and reverted ones still counted: the marker follows liveness.
_TO_SETTLE = text(
    """
    UPDATE provider_earnings
    SET marketplace_counted_at = CASE WHEN reverted_at IS NULL THEN now() END
    WHERE booking_id = :booking_id
      AND (reverted_at IS NULL) = (marketplace_counted_at IS NULL)
    RETURNING amount_units, reverted_at IS NULL AS counted
    """
)
_PROVIDER = text("SELECT provider_id::text FROM bookings WHERE id = :booking_id")
_COLUMNS = text(
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped"
)


def whole_usdc(units: int) -> Decimal:
    """Base units as whole USDC, exactly (`Decimal(units) / 10**6`, never a float)."""
    with localcontext(Context(prec=100, traps=[Inexact])):
        exact: Decimal = Decimal(units) / 10**USDC_DECIMALS
    return exact


@dataclass(frozen=True)
class CountersTable:
    """Where the counters live: the users table, its id's type, whether it has updated_at."""

    table: str
    id_type: str
    has_updated_at: bool


async def detect(session: AsyncSession, table: str = USERS_TABLE) -> CountersTable | None:
    """The marketplace's counters table, None unless it has id, total_earnings and
    completed_services."""
    columns = {
        str(name): str(type_) for name, type_ in await session.execute(_COLUMNS, {"table": table})
    }
    if not {"id", "total_earnings", "completed_services"} <= columns.keys():
        return None
    id_type = str(columns["id"])
    if not _TYPE_NAME.match(id_type):
        log.warning("marketplace_counters_skipped", table=table, reason=f"id type {id_type!r}")
        return None
    return CountersTable(table=table, id_type=id_type, has_updated_at="updated_at" in columns)


class MarketplaceCounters:
    """Keeps the marketplace's counters in step with `provider_earnings`, if it has them."""

    def __init__(self, table: str = USERS_TABLE) -> None:
        self._table = table
        self._found: CountersTable | None = None
        self._detected = False

    async def settle(self, session: AsyncSession, booking_id: uuid.UUID) -> None:
        """Count the booking's live, uncounted earning; uncount a reverted, counted one.

        Runs in the caller's transaction (the one that wrote the earning rows); a no-op when
        nothing changed or the database has no counters.
        """
        found = await self._counters_table(session)
        if found is None:
            return
        moved = (await session.execute(_TO_SETTLE, {"booking_id": booking_id})).all()
        if not moved:
            return
        units = sum(int(amount) if counted else -int(amount) for amount, counted in moved)
        services = sum(1 if counted else -1 for _, counted in moved)
        provider = (await session.execute(_PROVIDER, {"booking_id": booking_id})).scalar_one()
        updated = await session.execute(
            _add(found), {"earned": whole_usdc(units), "services": services, "user": provider}
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            log.warning(
                "marketplace_counters_no_user",
                booking_id=str(booking_id),
                provider_id=provider,
                table=found.table,
            )

    async def _counters_table(self, session: AsyncSession) -> CountersTable | None:
        if not self._detected:
            self._found = await detect(session, self._table)
            self._detected = True
            log.info(
                "marketplace_counters",
                table=self._table,
                maintained=self._found is not None,
            )
        return self._found


def _add(found: CountersTable) -> TextClause:
    table = ".".join('"' + part.replace('"', '""') + '"' for part in found.table.split("."))
    touch = ", updated_at = now()" if found.has_updated_at else ""
    # Typed binds: the driver then sends text for the id (cast by Postgres to the column's
    # type, so its index serves) and an exact numeric for the amount.
    return text(
        f"UPDATE {table} SET total_earnings = coalesce(total_earnings, 0) + :earned,"  # noqa: S608
        f" completed_services = coalesce(completed_services, 0) + :services{touch}"
        f" WHERE id = CAST(:user AS {found.id_type})"
    ).bindparams(
        bindparam("earned", type_=Numeric()),
        bindparam("services", type_=Integer()),
        bindparam("user", type_=String()),
    )
