"""One chaos run: stack up, workload and faults together, quiescence, checks, summary."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.chaos.adversary import Adversary
from bench.chaos.checks import CheckResults, run_checks
from bench.chaos.config import ChaosConfig
from bench.chaos.due import cut_short, waiting
from bench.chaos.faults import FaultInjector, FaultKind, plan_faults
from bench.chaos.report import RunSummary
from bench.chaos.stack import APIS, ChaosStack
from bench.chaos.workload import ApiRecorder, BookingRecord, Kind, Workload, pays_relayed
from chain.client import ChainClient
from chain.escrow import EscrowReader, OnChainBookingStatus
from db.engine import make_engine

log = structlog.get_logger(__name__)

QUIET_POLL_SECONDS = 2.0
PROGRESS_SECONDS = 15.0
Say = Callable[[str], None]
# Runs beside the whole run, from the stack's start to the checks' end (the soak's watch).
Monitor = Callable[[ChaosStack, ChainClient], Coroutine[Any, Any, None]]


async def _busy(
    engine: AsyncEngine,
    temporal: Client,
    reader: EscrowReader,
    orphans: list[BookingRecord],
    cut_short: set[str],
) -> dict[str, int]:
    """What still has work to do; all zero is quiescence."""
    async with engine.connect() as conn:
        open_rows = (
            await conn.execute(
                text(
                    "SELECT id::text, status, payment_deadline_at, release_at, now() AS now"
                    " FROM bookings"
                    " WHERE status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')"
                )
            )
        ).all()
        # Waiting for a deadline ahead after a flow cut short is not work under way (due.py).
        open_bookings = sum(
            not waiting(r.id in cut_short, r.status, r.payment_deadline_at, r.release_at, r.now)
            for r in open_rows
        )
        received = await conn.scalar(
            text("SELECT count(*) FROM blockchain_events WHERE status = 'RECEIVED'")
        )
    unrefunded = 0
    for record in orphans:
        if record.chain_booking_id is not None and record.payment_tx is not None:
            status = (await reader.get_booking(record.chain_booking_id)).status
            unrefunded += status is not OnChainBookingStatus.CANCELLED
    pending_activities = 0
    async for execution in temporal.list_workflows('ExecutionStatus="Running"'):
        described = await temporal.get_workflow_handle(execution.id).describe()
        pending_activities += len(described.raw_description.pending_activities)
    return {
        "open bookings due": open_bookings,
        "RECEIVED events": int(received or 0),
        "unrefunded orphans": unrefunded,
        "pending activities": pending_activities,
    }


async def wait_quiescent(
    stack: ChaosStack,
    engine: AsyncEngine,
    reader: EscrowReader,
    records: list[BookingRecord],
    within: float,
    say: Say,
) -> tuple[float | None, dict[str, int]]:
    started = time.monotonic()
    orphans = [r for r in records if r.kind is Kind.ORPHAN]
    last: dict[str, int] = {}
    temporal: Client | None = None
    while time.monotonic() - started < within:
        try:
            temporal = temporal or await Client.connect(
                stack.temporal_server.address, namespace=stack.temporal_server.namespace
            )
            last = await _busy(engine, temporal, reader, orphans, cut_short(records))
            if not any(last.values()):
                return time.monotonic() - started, last
            say(f"waiting for quiescence ({time.monotonic() - started:.0f}s): {last}")
        except Exception as exc:  # a server still coming back: look again
            log.warning("chaos.quiescence_probe_failed", error=str(exc))
        await asyncio.sleep(QUIET_POLL_SECONDS)
    return None, last


async def _progress(workload: Workload, injector: FaultInjector, total: int, say: Say) -> None:
    started = time.monotonic()
    told: set[int] = set()
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        records = workload.all_records
        for record in records:
            if record.error and record.index not in told:
                told.add(record.index)
                say(f"  booking #{record.index} ({record.kind.value}) cut short: {record.error}")
        created = sum(r.booking_id is not None or r.payment_tx is not None for r in records)
        errors = sum(r.error is not None for r in records)
        say(
            f"+{time.monotonic() - started:.0f}s: {created}/{len(records)} bookings started,"
            f" {errors} client flows cut short; faults {len(injector.windows)}/{total}"
            f" ({', '.join(w.kind.value for w in injector.windows[-2:])})"
        )


async def run_chaos(
    config: ChaosConfig,
    workdir: Path,
    command: str,
    say: Say = lambda _: None,
    monitor: Monitor | None = None,
) -> RunSummary:
    stack = ChaosStack(workdir, timers=config.timers, faketime=config.production_faults)
    say(f"starting the stack in {workdir}")
    await stack.start()
    say(f"stack up: API {stack.api_url}, anvil {stack.rpc_url}, proxy {stack.proxy.http_url}")
    try:
        async with ChainClient([stack.rpc_url]) as chain:
            watching = asyncio.create_task(monitor(stack, chain)) if monitor else None
            try:
                return await _run(config, stack, chain, command, say)
            finally:
                if watching is not None:
                    watching.cancel()
                    await asyncio.gather(watching, return_exceptions=True)
    finally:
        await stack.stop()


async def _run(
    config: ChaosConfig, stack: ChaosStack, chain: ChainClient, command: str, say: Say
) -> RunSummary:
    recorder = ApiRecorder()
    workload = Workload(
        config=config,
        api_url=stack.api_url,
        chain=chain,
        deployment=stack.deployment,
        signer_key=stack.roles.signer.private_key,
        recorder=recorder,
    )
    adversary = Adversary(workload, stack.api_url, stream_url=stack.replica_url(APIS[0]))
    workload.flows.update(adversary.flows)
    try:
        plan = plan_faults(config, random.Random(f"faults:{config.seed}"))
        # Each deep reorg pays a victim booking from a wallet of its own, after the plan's.
        victims = sum(fault.kind is FaultKind.REORG_DEEP for fault in plan)
        await workload.fund_gas(config.bookings + victims)
        await adversary.fund_gas()
        injector = FaultInjector(stack, chain, workload)
        say("fault plan: " + "; ".join(f"+{f.at:.0f}s {f.kind.value}" for f in plan))
        started = time.monotonic()
        progress = asyncio.create_task(_progress(workload, injector, len(plan), say))
        try:
            await asyncio.gather(workload.run(), injector.run(plan, started))
        finally:
            progress.cancel()
        workload_seconds = time.monotonic() - started
        say(f"workload and faults done in {workload_seconds:.0f}s")
    finally:
        await workload.close()
        await adversary.close()
    engine = make_engine(stack.database_url, pool_size=2)
    reader = EscrowReader(chain, stack.deployment.escrow, usdc_address=stack.deployment.usdc)
    try:
        quiet, busy = await wait_quiescent(
            stack, engine, reader, workload.all_records, config.quiescence_timeout, say
        )
        say("quiet; checking" if quiet is not None else "not quiet; checking anyway")
        checks: CheckResults = await run_checks(
            engine=engine,
            chain=chain,
            deployment=stack.deployment,
            records=workload.all_records,
            calls=recorder.calls,
            windows=injector.windows,
            origin=started,
            adversary=adversary.log,
            operator=stack.roles.operator.address,
            forgotten_operator_nonces=tuple(injector.forgotten_operator_nonces),
            temporal=await Client.connect(
                stack.temporal_server.address, namespace=stack.temporal_server.namespace
            ),
        )
    finally:
        await engine.dispose()
    relayed = [r for r in workload.all_records if pays_relayed(r)]
    checks.notes.append(
        f"relayed payments (issue 19): {sum(1 for r in relayed if r.payment_tx)} sent of "
        f"{len(relayed)} planned; the checks above judge each like any other payment"
    )
    if quiet is None:
        checks.add(
            "quiescence reached",
            [f"not quiet after {config.quiescence_timeout:.0f}s: {busy}"],
        )
    return RunSummary(
        seed=config.seed,
        command=command,
        bookings=workload.all_records,
        windows=injector.windows,
        checks=checks,
        quiescence_seconds=quiet,
        workload_seconds=workload_seconds,
        started=started,
        unplanned_exits=Counter(e.app for e in stack.unplanned_exits),
        api_statuses=Counter(str(c.status) for c in recorder.calls),
        adversary=adversary.log,
        adversary_share=config.adversary_share,
        apps=tuple(stack.pids()),
        front_requests=stack.front.requests,
    )
