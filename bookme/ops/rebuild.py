"""``bookme rebuild``: bring Postgres back from the workflows and the chain after a restore.

Postgres restored from a backup has lost what the workflows wrote since. Each booking (and
orphan refund) workflow still in Temporal, open or closed, is replayed from its history with
the workflow code here, and every projection write it made (its row, each transition's audit
row and event mark, settlement legs, webhook outbox rows) is run again through the worker's own
store with the input the workflow gave it. Writes still present change nothing (each dedupes on
its key), so the command is safe to run twice and on an intact database.

Why a replay and not a ``reproject`` update on the workflow: a closed workflow takes no update,
and closed bookings are the ones with the money rows; the replay reaches open and closed alike,
adds no command to any workflow, and re-uses the exact records, not a re-derivation of them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecution, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from activities.reconcile.resync_store import ResyncStore
from bookme.ops.deps import connect_temporal, database, escrow_reader
from bookme.ops.errors import OpsError
from bookme.ops.rebuild_apply import RebuildRefused, count_rows, raise_nonce_floor, replay_writes
from bookme.ops.rebuild_capture import capture_all
from bookme.ops.rebuild_chain import ChainOnlyBooking, ChainScan, chain_only_bookings
from bookme.ops.rebuild_ledger import settle_in_flight
from bookme.ops.rebuild_nonces import restored_checkpoint, used_nonces
from bookme.settings import Settings
from workflows import constants as c

HELP = (
    "re-project every booking and orphan workflow into Postgres (after a restore from backup)",
    "Replays each booking/orphan workflow on this task queue still in Temporal (open and "
    "closed) and re-runs the Postgres writes it made: booking rows, audit rows, event marks, "
    "earnings, fees, refunds, webhook outbox rows. Then raises the signature nonce sequence "
    "above every nonce the workflows signed, and starts the orphan refund for a payment the "
    "chain holds that no row or workflow knows. Idempotent. Run it with the worker, listener "
    "and API stopped (docs/runbook.md, 'Restore from a backup'). Exit code 1 if a booking "
    "could not be rebuilt.",
)


@dataclass(frozen=True, kw_only=True)
class RebuildFailure:
    workflow_id: str
    reason: str


@dataclass(kw_only=True)
class RebuildReport:
    workflows: int = 0
    writes: int = 0  # recorded writes re-run (most change nothing)
    restored: dict[str, int] = field(default_factory=dict)  # rows added, per table
    failures: list[RebuildFailure] = field(default_factory=list)
    chain_only: list[ChainOnlyBooking] = field(default_factory=list)
    nonce_floor: int = 0
    ledger_settled: int = 0  # operator transactions the restored ledger showed in flight

    def write(self, out: IO[str]) -> None:
        out.write(f"rebuild: {self.workflows} workflows replayed, {self.writes} writes re-run\n")
        out.write("rows restored: " + ", ".join(f"{t} +{n}" for t, n in self.restored.items()))
        out.write(f"\nsignature nonces: the next one is above {self.nonce_floor}\n")
        out.write(f"operator transactions settled from the chain: {self.ledger_settled}\n")
        out.write(f"could not rebuild: {len(self.failures) or 'none'}\n")
        for failure in self.failures:
            out.write(f"  {failure.workflow_id}: {failure.reason}\n")
        out.write(f"known to the chain only: {len(self.chain_only) or 'none'}\n")
        for booking in self.chain_only:
            out.write(f"  {booking.chain_booking_id} ({booking.on_chain}): {booking.action}\n")


async def _executions(temporal: Client, task_queue: str) -> list[WorkflowExecution]:
    """This deployment's booking and orphan workflows, oldest first."""
    query = (
        f"TaskQueue = '{task_queue}' AND WorkflowType IN "
        f"('{c.BOOKING_WORKFLOW_NAME}', '{c.ORPHAN_WORKFLOW_NAME}')"
    )
    executions = [e async for e in temporal.list_workflows(query)]
    return sorted(executions, key=lambda e: e.start_time)


async def _histories(
    temporal: Client, executions: list[WorkflowExecution], report: RebuildReport
) -> AsyncIterator[WorkflowHistory]:
    for execution in executions:
        handle = temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            history = await handle.fetch_history()
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                failure = RebuildFailure(workflow_id=execution.id, reason=exc.message)
                report.failures.append(failure)
            # Not found: it left the retention since the listing (which lags the deletion);
            # nothing of it can be rebuilt, and the chain scan catches what it held.
            continue
        yield history


async def _rebuild_all(
    temporal: Client,
    store: ResyncStore,
    sessions: async_sessionmaker[AsyncSession],
    executions: list[WorkflowExecution],
    report: RebuildReport,
) -> int:
    """Replay every workflow and re-run its writes; the largest nonce they signed (0 if none)."""
    signed = 0
    async for workflow_id, captured in capture_all(_histories(temporal, executions, report)):
        if captured.replay_failure is not None:
            # The code here cannot replay it (a change not behind workflow.patched): its writes
            # cannot be trusted to be the ones it made.
            reason = f"replay failed: {captured.replay_failure.splitlines()[0]}"
            report.failures.append(RebuildFailure(workflow_id=workflow_id, reason=reason))
            continue
        report.writes += len(captured.writes)
        signed = max(signed, *captured.nonces, 0)
        try:
            behind = await replay_writes(store, sessions, captured.writes)
        except RebuildRefused as exc:
            behind = str(exc)
        if behind is not None:
            report.failures.append(RebuildFailure(workflow_id=workflow_id, reason=behind))
    return signed


def _first_block(settings: Settings, checkpoint: int | None) -> int:
    """Where a payment the backup lost can be: after the checkpoint it holds (with the
    reconciler's lookback below it), else from the deployment on."""
    if checkpoint is None:
        return settings.reconcile_from_block
    lookback = checkpoint - settings.reconcile_event_lookback_blocks
    return max(settings.reconcile_from_block, lookback)


async def rebuild(settings: Settings, *, from_block: int | None, out: IO[str]) -> RebuildReport:
    """Re-project every workflow on ``settings.task_queue``, then look at the chain's payments."""
    temporal = await connect_temporal(settings)
    report = RebuildReport()
    async with database(settings) as sessions, escrow_reader(settings) as escrow:
        # The worker's store, as the worker builds it: the audit rows name the workflow again.
        store = ResyncStore(sessions, escrow_address=escrow.address)
        before = await count_rows(sessions)
        executions = await _executions(temporal, settings.task_queue)
        report.workflows = len(executions)
        signed = await _rebuild_all(temporal, store, sessions, executions, report)
        orphans = {e.id for e in executions if e.workflow_type == c.ORPHAN_WORKFLOW_NAME}
        checkpoint = await restored_checkpoint(sessions, settings.chain_id, escrow.address)
        scan = ChainScan(
            chain=escrow.contract.client,
            escrow=escrow,
            chain_id=settings.chain_id,
            from_block=_first_block(settings, checkpoint) if from_block is None else from_block,
            policy=settings.booking_policy(),
            task_queue=settings.task_queue,
        )
        events = await scan.events()
        after = scan.from_block - 1 if checkpoint is None else checkpoint
        used = await used_nonces(scan.chain, events, after=after)
        report.nonce_floor = max({signed, *used})
        await raise_nonce_floor(sessions, report.nonce_floor)
        report.chain_only = await chain_only_bookings(scan, events, sessions, temporal, orphans)
        report.ledger_settled = await settle_in_flight(sessions, scan.chain, settings.chain_id)
        counted = await count_rows(sessions)
    report.restored = {table: counted[table] - before[table] for table in counted}
    report.write(out)
    return report


def add_rebuild_command(commands: Any) -> None:
    """Register ``bookme rebuild`` on the ``bookme`` subparsers."""
    summary, detail = HELP
    parser = commands.add_parser("rebuild", help=summary, description=f"{summary}. {detail}")
    parser.add_argument(
        "--from-block",
        type=int,
        default=None,
        help="first block to read the escrow's payments from (default: the restored listener"
        " checkpoint minus BOOKME_RECONCILE_EVENT_LOOKBACK_BLOCKS, else BOOKME_RECONCILE_FROM_BLOCK)",
    )


def run_rebuild_command(
    args: argparse.Namespace, settings: Settings, out: IO[str] = sys.stdout
) -> int:
    """0 when every workflow was re-projected, 1 if some could not be, 2 on an ops error."""
    try:
        report = asyncio.run(rebuild(settings, from_block=args.from_block, out=out))
    except OpsError as exc:
        print(f"bookme rebuild: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error line
        return 2
    return 1 if report.failures else 0
