"""``bookme retention``: apply the data-retention policy now (the daily schedule does the same)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO

from activities.retention import apply_retention
from bookme.ops.deps import database
from bookme.schedules import retention_request
from bookme.settings import Settings


async def retention(settings: Settings, *, dry_run: bool, out: IO[str]) -> int:
    request = retention_request(settings, dry_run=dry_run)
    async with database(settings) as sessions:
        result = await apply_retention(sessions, request, now=datetime.now(UTC))
    verb = "would delete" if dry_run else "deleted"
    out.write(
        f"{verb}: {result.blockchain_events} blockchain_events "
        f"(PROCESSED/REORGED older than {request.events_days} d), "
        f"{result.signature_nonces} signature_nonces (expired > {request.nonces_days} d, settled), "
        f"{result.rate_limit_counters} rate_limit_counters (older than {request.rate_limit_hours} h)\n"
    )
    return 0
