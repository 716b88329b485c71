"""Issue 17's catch-up after a listener outage, as users feel it: N bookings paid while the
listener was down, then the time from its restart until every one shows PAID in Postgres.

The outage is compressed: the listener is stopped while the N payments are mined, then anvil
mines `OUTAGE_BLOCKS` empty blocks `BLOCK_SECONDS` apart (ten minutes of Base blocks, the chain's
clock moved on with them) instead of ten real minutes passing. The workflows' own timers run on
real time, so their monitoring windows (opened when the payment was authorized) are still open
and their polls may find a payment first; in a real ten-minute outage most windows would have
closed and the listener would apply nearly all of them. Who applied each payment is read from
its `blockchain_events` row: the poll's activity inserts the row itself (received_at equals
processed_at, one transaction), while the listener stores it first and the workflow marks it
processed later. The chain's clock is ten minutes ahead afterwards: run this section last.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.results import Latency, Report
from bench.stack import BenchStack
from bench.traffic import PAID_OR_LATER, BookingTraffic, Customer, Lifecycle

OUTAGE_BLOCKS = 300
BLOCK_SECONDS = 2
CONCURRENCY = 16
PAID_WITHIN = 600.0

_APPLIED = text(
    """
    SELECT b.id::text AS id, e.received_at, e.processed_at
    FROM bookings b
    JOIN blockchain_events e
      ON e.chain_booking_id = lower(b.blockchain_booking_id)
     AND e.event_type = 'BookingCreatedAndPaid'
    WHERE b.id = ANY(CAST(:ids AS uuid[]))
    """
)


@dataclass(frozen=True, kw_only=True)
class OutageFigures:
    payments: int
    outage_blocks: int
    outage_chain_seconds: int
    paid_before_restart: int
    listener_caught_up_seconds: float
    all_paid_seconds: float
    restart_to_paid: Latency
    applied_by_listener: int
    applied_by_poll: int


async def listener_outage(
    stack: BenchStack, traffic: BookingTraffic, engine: AsyncEngine, *, count: int
) -> OutageFigures:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def prepare() -> tuple[Customer, Lifecycle, dict[str, Any]]:
        async with limit:
            return await traffic.prepared()

    async def pay(ready: tuple[Customer, Lifecycle, dict[str, Any]]) -> None:
        async with limit:
            await traffic.pay(*ready)

    ready = await asyncio.gather(*(prepare() for _ in range(count)))
    stack.stop_app("listener")
    await asyncio.gather(*(pay(r) for r in ready))
    stack.node.rpc("anvil_mine", hex(OUTAGE_BLOCKS), hex(BLOCK_SECONDS))
    ids = [run.booking_id for _, run, _ in ready]
    restarted = time.time()
    await stack.start_listener("ws")  # returns once its cursor reaches the head
    caught_up = time.time() - restarted
    seen = await asyncio.gather(
        *(traffic.watcher.reach(booking, PAID_OR_LATER, PAID_WITHIN) for booking in ids)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(_APPLIED, {"ids": ids})).mappings().all()
    by_poll = sum(1 for row in rows if row["received_at"] == row["processed_at"])
    return OutageFigures(
        payments=count,
        outage_blocks=OUTAGE_BLOCKS,
        outage_chain_seconds=OUTAGE_BLOCKS * BLOCK_SECONDS,
        paid_before_restart=sum(1 for at in seen if at < restarted),
        listener_caught_up_seconds=round(caught_up, 2),
        all_paid_seconds=round(max(seen) - restarted, 2),
        restart_to_paid=Latency.of_seconds([max(0.0, at - restarted) for at in seen]),
        applied_by_listener=len(rows) - by_poll,
        applied_by_poll=by_poll,
    )


def add_outage(report: Report, f: OutageFigures) -> None:
    report.add(
        "6 scale",
        f"listener outage ({f.outage_blocks} blocks, {f.outage_chain_seconds} s of chain): "
        f"{f.payments} paid meanwhile",
        f"restart -> all PAID {f.all_paid_seconds:.1f} s "
        f"(p50 {f.restart_to_paid.p50:.0f} / p99 {f.restart_to_paid.p99:.0f} ms)",
        f"listener caught up in {f.listener_caught_up_seconds:.1f} s",
        f"applied by listener {f.applied_by_listener}, by workflow poll {f.applied_by_poll} "
        f"({f.paid_before_restart} PAID before the restart)",
    )
    data: dict[str, Any] = asdict(f)
    report.data["listener_outage"] = data
