"""``bookme unknown-statuses``: statuses in the bookings table that this service does not use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO

from rich.console import Console
from rich.table import Table

from bookme.ops.deps import database
from bookme.settings import Settings
from db.marketplace_rows import unknown_statuses


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


async def list_unknown_statuses(settings: Settings, out: IO[str]) -> int:
    async with database(settings) as sessions, sessions() as session:
        counts = await unknown_statuses(session)
    console = Console(file=out, width=160, highlight=False)
    if not counts:
        console.print("every row in bookings holds a status of this service's")
        return 0
    table = Table(title="statuses this service does not use (the marketplace's own rows)")
    for column in ("status", "rows", "first created", "last created"):
        table.add_column(column)
    for count in counts:
        status = "(none)" if count.status is None else repr(count.status)
        table.add_row(
            status, str(count.rows), _when(count.first_created_at), _when(count.last_created_at)
        )
    console.print(table)
    console.print(
        f"{sum(c.rows for c in counts)} rows, kept as the marketplace's app wrote them: the "
        "service never reads, changes or acts on a row it does not manage (docs/runbook.md)"
    )
    return 0
