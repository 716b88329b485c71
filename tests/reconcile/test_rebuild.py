"""Postgres restored from a backup: `bookme rebuild` brings back every row the workflows wrote
since, from their histories, and the money checks of the chaos run hold again."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bench.chaos.checks import run_checks
from bookme.ops.rebuild import RebuildReport, rebuild
from bookme.ops.rebuild_backup import dump, restore
from chain.deploy import Deployment
from chain.escrow import OnChainBookingStatus
from db.engine import make_engine
from workflows.types import BookingStatus

from .conftest import Rig, wait_for

pytestmark = pytest.mark.integration

# Every table the workflows project into. Compared without what a re-run legitimately changes:
# surrogate ids and the write times (the deadline of a re-created row counts from its write).
PROJECTION = (
    "bookings",
    "booking_events",
    "blockchain_events",
    "provider_earnings",
    "platform_fees",
    "refunds",
    "webhook_outbox",
)
# Kept as "is set", not as a time: a reorg clears them, a rebuild sets them again.
SET_OR_NOT = {"completed_at", "reverted_at", "marketplace_counted_at", "blockchain_confirmed_at"}


def _without_times(value: Any) -> Any:
    """Write times dropped at any depth (a webhook payload carries the row as it was written)."""
    if not isinstance(value, dict):
        return value
    return {
        key: (item is not None if key in SET_OR_NOT else _without_times(item))
        for key, item in value.items()
        if key != "id" or isinstance(item, str)  # surrogate ids; uuids (bookings, events) stay
        if not key.endswith("_at") or key in SET_OR_NOT
    }


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps(_without_times(row), sort_keys=True)


async def projection(rig: Rig, leave_out: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """A canonical dump of the projection: per table, its rows as sorted JSON, without the
    rows that mention any of ``leave_out``."""
    engine = make_engine(rig.settings.database_url or "", pool_size=1)  # no cached plans
    try:
        async with engine.connect() as conn:
            return {
                table: sorted(
                    line
                    for line in map(
                        _canonical,
                        (await conn.execute(text(f"SELECT to_jsonb(t) FROM {table} t"))).scalars(),  # noqa: S608
                    )
                    if not any(word in line for word in leave_out)
                )
                for table in PROJECTION
            }
    finally:
        await engine.dispose()


def _differences(
    got: dict[str, list[str]], expected: dict[str, list[str]]
) -> dict[str, tuple[set[str], set[str]]]:
    """Per table that differs: (rows only in got, rows only in expected)."""
    return {
        table: (set(got[table]) - set(expected[table]), set(expected[table]) - set(got[table]))
        for table in PROJECTION
        if got[table] != expected[table]
    }


async def _rebuild(rig: Rig, temporal: Any) -> tuple[RebuildReport, str]:
    settings = rig.settings.model_copy(update={"temporal_address": temporal.address})
    out = io.StringIO()
    report = await rebuild(settings, from_block=None, out=out)
    return report, out.getvalue()


async def test_a_restored_database_is_rebuilt_from_the_workflows_and_the_chain(
    rig: Rig, temporal, tmp_path: Path
) -> None:
    r = rig.escrow.roles
    # Before the backup: one completed, two paid, one waiting for its payment.
    done_early, _ = await rig.paid()
    completed_later, completed_handle = await rig.paid()
    cancelled_later, cancelled_handle = await rig.paid()
    await rig.start(rig.booking())
    start = await rig.chain.block_number() + 1
    rig.escrow.complete(done_early.chain_booking_id, r.customer)
    await rig.deliver(start)
    await wait_for(lambda: rig.db_status(done_early.booking_id), "COMPLETED")
    await rig.set_checkpoint(await rig.chain.block_number())  # the listener's, backed up too
    backup = tmp_path / "bookme.dump"
    dump(rig.settings.database_url or "", backup)
    backed_up = await projection(rig)

    # After it: a completion, a refund, a new paid booking, a new unpaid one, authorizations.
    start = await rig.chain.block_number() + 1
    rig.escrow.complete(completed_later.chain_booking_id, r.customer)
    rig.escrow.emergency(cancelled_later.chain_booking_id, reason="ops refund")
    await rig.deliver(start)
    await wait_for(lambda: rig.status_of(completed_handle), BookingStatus.COMPLETED)
    await wait_for(lambda: rig.status_of(cancelled_handle), BookingStatus.CANCELLED)
    await rig.paid()
    _, _, last_auth = await rig.authorized()
    before_restore = await projection(rig)
    # A payment only the chain knows: its booking's workflow is past Temporal's retention and
    # its row came after the backup. Its authorization's nonce is beyond what the restored
    # sequence would hand out next: only the chain can tell it was used.
    lost_nonce = last_auth.nonce + 1000
    forgotten = rig.escrow.booking_auth(nonce=lost_nonce)
    rig.escrow.pay(forgotten)
    unknown = (forgotten.booking_id.lower(),)
    assert all(len(before_restore[t]) >= len(backed_up[t]) for t in PROJECTION)

    restore(rig.settings.database_url or "", backup)
    assert await projection(rig) == backed_up  # the restore really lost those rows

    report, printed = await _rebuild(rig, temporal)
    assert report.failures == [], printed
    # The paid one and the unpaid one created after the backup; one completion, one refund.
    assert report.restored["bookings"] == 2, printed
    assert report.restored["provider_earnings"] == report.restored["refunds"] == 1, printed
    assert [b.chain_booking_id for b in report.chain_only] == [forgotten.booking_id.lower()]
    assert "refund started" in report.chain_only[0].action
    assert "could not rebuild: none" in printed
    assert _differences(await projection(rig, leave_out=unknown), before_restore) == {}

    # The signer never hands out a nonce the chain has seen, though the restore forgot the
    # last ones and the forgotten booking's workflow cannot tell its own.
    assert report.nonce_floor == lost_nonce
    _, _, fresh = await rig.authorized()
    assert fresh.nonce > lost_nonce
    assert not await rig.reader.nonce_used(fresh.nonce)

    # The forgotten payment goes back to its customer (the orphan refund); the listener's
    # re-scan from the restored checkpoint finds every event applied.
    async def forgotten_on_chain() -> OnChainBookingStatus:
        return (await rig.reader.get_booking(forgotten.booking_id)).status

    await wait_for(forgotten_on_chain, OnChainBookingStatus.CANCELLED)
    await rig.deliver(start)
    await wait_for(lambda: _unsettled_events(rig), 0)

    # A second run on the rebuilt database changes nothing, and starts no second refund.
    settled = await projection(rig)
    again, printed = await _rebuild(rig, temporal)
    assert set(again.restored.values()) == {0}, printed
    assert again.chain_only == []
    assert again.failures == []
    assert _differences(await projection(rig), settled) == {}

    # The chaos run's checks: final states, each chain event applied once, the money.
    open_rows = await rig.sql(
        "SELECT count(*) FROM bookings WHERE status IN ('PAID', 'PENDING_PAYMENT')"
    )
    await _checks_hold(rig, still_open=int(open_rows[0][0]))


async def _unsettled_events(rig: Rig) -> int:
    rows = await rig.sql("SELECT count(*) FROM blockchain_events WHERE status = 'RECEIVED'")
    return int(rows[0][0])


async def _checks_hold(rig: Rig, *, still_open: int) -> None:
    """bench/chaos/checks.py on this escrow: only the bookings left open on purpose show up,
    as "not terminal" (their timers are days away)."""
    r = rig.escrow.roles
    deployment = Deployment(
        chain_id=rig.settings.chain_id,
        escrow=rig.reader.address,
        usdc=rig.escrow.usdc.address,
        deployer=r.owner.address,
        block_number=0,
        signer=r.signer.address,
        operator=r.operator.address,
        treasury=r.owner.address,
        mock_usdc=True,
    )
    results = await run_checks(
        engine=rig.engine,
        chain=rig.chain,
        deployment=deployment,
        records=[],
        calls=[],
        windows=[],
        origin=0.0,
    )
    stuck = results.violations.pop("no booking stuck past a deadline", [])
    assert len(stuck) == still_open, stuck
    assert {name: v for name, v in results.violations.items() if v} == {}
