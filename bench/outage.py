"""Issue 17's catch-up after a listener outage, as users feel it: bookings paid while the listener
was down, and when each shows PAID in Postgres, from its own payment and from the restart.

The outage is compressed: the listener is stopped while the payments are mined, then anvil mines
`OUTAGE_BLOCKS` empty blocks `BLOCK_SECONDS` apart (ten minutes of Base blocks; the chain's clock
moves on with them) instead of ten real minutes passing. The workflows' timers run on real time,
so two groups are paid: "open", under the default policy, whose monitoring windows (opened by
the authorization) are still open and poll the chain, as for a customer who pays right after
authorizing; and "closed", from an API whose policy does not poll within the run, standing for
payments whose window has run out (a real ten-minute outage leaves those to the listener).

Who applied each payment is read from its `blockchain_events` row: the poll's activity inserts
the row itself (received_at equals processed_at, one transaction), while the listener stores it
first and the workflow marks it processed later. The chain's clock is ten minutes ahead
afterwards: run this section last.
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
# The second group's bookings come from an API whose policy never polls within the run: their
# monitoring windows are as good as closed (a payment made more than three minutes after its
# authorization, which a real ten-minute outage leaves to the listener).
WINDOWS_CLOSED_API = "api-windows-closed"
WINDOWS_CLOSED = {"BOOKME_MONITORING_WINDOW_SECONDS": "1", "BOOKME_PUSH_GRACE_SECONDS": "86400"}

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

Ready = tuple[Customer, Lifecycle, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class OutageGroup:
    """One group of payments made during the outage."""

    windows: str  # "open" (the workflows may poll) or "closed" (only the listener can tell)
    payments: int
    paid_before_restart: int
    all_paid_after_restart_seconds: float
    restart_to_paid: Latency
    mined_to_paid: Latency
    applied_by_listener: int
    applied_by_poll: int


@dataclass(frozen=True, kw_only=True)
class OutageFigures:
    outage_blocks: int
    outage_chain_seconds: int
    outage_wall_seconds: float
    listener_caught_up_seconds: float
    groups: list[OutageGroup]


async def _prepared(traffic: BookingTraffic, count: int) -> list[Ready]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one() -> Ready:
        async with limit:
            return await traffic.prepared()

    return await asyncio.gather(*(one() for _ in range(count)))


async def _pay_all(traffic: BookingTraffic, ready: list[Ready]) -> list[asyncio.Task[float]]:
    """Pay each booking, its PAID waiter registered first (so the moment it flips is seen)."""
    limit = asyncio.Semaphore(CONCURRENCY)
    waiters = [
        asyncio.create_task(traffic.watcher.reach(run.booking_id, PAID_OR_LATER, PAID_WITHIN))
        for _, run, _ in ready
    ]

    async def pay(r: Ready) -> None:
        async with limit:
            await traffic.pay(*r)

    await asyncio.gather(*(pay(r) for r in ready))
    return waiters


async def listener_outage(
    stack: BenchStack, traffic: BookingTraffic, engine: AsyncEngine, *, count: int
) -> OutageFigures:
    url = await stack.start_api(WINDOWS_CLOSED_API, WINDOWS_CLOSED)
    closed_traffic = BookingTraffic(stack, engine, api_url=url)
    closed_traffic.watcher.start()
    try:
        groups = {
            "open": (traffic, await _prepared(traffic, count)),
            "closed": (closed_traffic, await _prepared(closed_traffic, count)),
        }
        stopped = time.time()
        stack.stop_app("listener")
        waiters = {name: await _pay_all(t, ready) for name, (t, ready) in groups.items()}
        stack.node.rpc("anvil_mine", hex(OUTAGE_BLOCKS), hex(BLOCK_SECONDS))
        restarted = time.time()
        await stack.start_listener("ws")  # returns once its cursor reaches the head
        caught_up = time.time() - restarted
        measured = []
        for name, (_, ready) in groups.items():
            seen = await asyncio.gather(*waiters[name])
            measured.append(await _group(engine, name, ready, seen, restarted))
    finally:
        await closed_traffic.close()
        stack.stop_app(WINDOWS_CLOSED_API)
    return OutageFigures(
        outage_blocks=OUTAGE_BLOCKS,
        outage_chain_seconds=OUTAGE_BLOCKS * BLOCK_SECONDS,
        outage_wall_seconds=round(restarted - stopped, 1),
        listener_caught_up_seconds=round(caught_up, 2),
        groups=measured,
    )


async def _group(
    engine: AsyncEngine, name: str, ready: list[Ready], seen: list[float], restarted: float
) -> OutageGroup:
    ids = [run.booking_id for _, run, _ in ready]
    async with engine.connect() as conn:
        rows = (await conn.execute(_APPLIED, {"ids": ids})).mappings().all()
    by_poll = sum(1 for row in rows if row["received_at"] == row["processed_at"])
    after = [at - restarted for at in seen if at >= restarted]
    return OutageGroup(
        windows=name,
        payments=len(ready),
        paid_before_restart=len(seen) - len(after),
        all_paid_after_restart_seconds=round(max(after, default=0.0), 2),
        restart_to_paid=Latency.of_seconds(after),
        mined_to_paid=Latency.of_seconds(
            [at - run.receipt_visible for at, (_, run, _) in zip(seen, ready, strict=True)]
        ),
        applied_by_listener=len(rows) - by_poll,
        applied_by_poll=by_poll,
    )


def add_outage(report: Report, f: OutageFigures) -> None:
    for g in f.groups:
        report.add(
            "6 scale",
            f"listener outage ({f.outage_blocks} blocks = {f.outage_chain_seconds} s of chain, "
            f"{f.outage_wall_seconds:.0f} s real): {g.payments} paid, windows {g.windows}",
            f"{g.paid_before_restart} PAID before the restart; the rest "
            f"{g.all_paid_after_restart_seconds:.1f} s after it",
            f"listener caught up {f.listener_caught_up_seconds:.1f} s after its restart",
            f"mined->PAID p50 {g.mined_to_paid.p50 / 1000:.1f} / p99 "
            f"{g.mined_to_paid.p99 / 1000:.1f} s; applied by listener {g.applied_by_listener}, "
            f"by workflow poll {g.applied_by_poll}",
        )
    data: dict[str, Any] = asdict(f)
    report.data["listener_outage"] = data
