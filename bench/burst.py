"""Issue 17's auto-completion burst: N paid bookings whose release times fall in the same second
(appointments at the same hour), completed by the operator key through the Postgres nonce ledger.

The bookings come from an API process of the stack whose policy has no auto-complete delay, so
the release time is the appointment itself, a little after every booking is paid (anvil stamps
blocks with the wall clock, so the chain accepts completion once that time has passed). Every
figure is read back from the rows the system wrote, on one clock (Postgres's):

- timer -> sent: the workflow's due time (release + BLOCK_TIME_MARGIN) to the ledger's record of
  the signed transaction (written just before the broadcast);
- sent -> mined: that record to the listener storing the ServiceCompleted log (anvil mines on
  arrival, and the listener follows newHeads);
- release -> COMPLETED: the release time to the booking's service_completed audit row;
- in flight: the most ledger transactions recorded and not yet settled at one moment (1 would
  mean the operator key sends one at a time).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.results import Latency, Report, rate
from bench.stack import BenchStack
from bench.traffic import PAID_OR_LATER, BenchFailure, BookingTraffic, Customer, Lifecycle
from workflows.constants import BLOCK_TIME_MARGIN

BURST_API = "api-burst"
GOAL_SECONDS = 300.0  # every booking COMPLETED within 5 minutes of its release time
PREPARE_CONCURRENCY = 16
# Preparing (create, authorize, pay, PAID) runs at 4-7 bookings/s on the shared 2-core machine;
# a booking paid after its release time is refused by the chain (and left out, counted).
PREPARE_SECONDS_PER_BOOKING = 0.4


def burst_lead_seconds(count: int) -> float:
    """How far ahead to put the release: every booking paid before it, with room to spare."""
    return 30.0 + count * PREPARE_SECONDS_PER_BOOKING


_BOOKINGS = text(
    """
    SELECT b.id::text AS id, b.status, lower(b.blockchain_booking_id) AS chain_id,
           b.release_at,
           (SELECT min(e.created_at) FROM booking_events e
             WHERE e.booking_id = b.id AND e.kind = 'service_completed') AS completed,
           (SELECT min(e.created_at) FROM booking_events e
             WHERE e.booking_id = b.id AND e.kind = 'auto_complete_sent') AS sent_row,
           (SELECT min(c.received_at) FROM blockchain_events c
             WHERE c.chain_booking_id = lower(b.blockchain_booking_id)
               AND c.event_type = 'ServiceCompleted') AS mined
    FROM bookings b WHERE b.id = ANY(CAST(:ids AS uuid[]))
    """
)
_LEDGER = text(
    """
    SELECT nonce, intent, created_at, settled_at, outcome FROM tx_ledger
    WHERE sender = :sender AND intent LIKE 'complete_service:%' ORDER BY nonce
    """
)


@dataclass(frozen=True, kw_only=True)
class BurstFigures:
    bookings: int
    prepared: int
    paid_before_release: int
    prepare_seconds: float
    completed: int
    within_goal: int
    last_completed_seconds: float
    completions_per_second: float
    timer_to_sent: Latency
    sent_to_mined: Latency
    release_to_completed: Latency
    max_in_flight: int
    ledger_transactions: int
    nonce_gaps: int
    intents_sent_twice: int


async def _prepare(
    traffic: BookingTraffic, customer: Customer, scheduled_at: str
) -> tuple[Lifecycle, float]:
    """Created (appointment = release time), authorized, paid; and when the row showed PAID."""
    run = Lifecycle()
    await traffic.create(
        customer, run, traffic.create_body(customer) | {"scheduled_at": scheduled_at}
    )
    signed = await traffic.authorize(customer, run)
    await traffic.pay(customer, run, signed)
    return run, await traffic.watcher.reach(run.booking_id, PAID_OR_LATER, 300)


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


async def _wait_completed(engine: AsyncEngine, ids: list[str], until: float) -> None:
    query = text(
        "SELECT count(*) FROM bookings WHERE id = ANY(CAST(:ids AS uuid[])) "
        "AND status = 'COMPLETED'"
    )
    while time.time() < until:
        async with engine.connect() as conn:
            done = int((await conn.execute(query, {"ids": ids})).scalar_one())
        if done == len(ids):
            return
        await asyncio.sleep(1.0)


async def completion_burst(
    stack: BenchStack, engine: AsyncEngine, *, count: int, lead_seconds: float
) -> BurstFigures:
    """Prepare `count` paid bookings all released `lead_seconds` from now; measure the burst."""
    url = await stack.start_api(BURST_API, {"BOOKME_AUTO_COMPLETE_DELAY_SECONDS": "0"})
    traffic = BookingTraffic(stack, engine, api_url=url)
    traffic.watcher.start()
    release = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead_seconds)
    try:
        limit = asyncio.Semaphore(PREPARE_CONCURRENCY)

        async def one() -> tuple[Lifecycle, float] | None:
            async with limit:
                try:
                    return await _prepare(traffic, traffic.customer(), release.isoformat())
                except (BenchFailure, httpx.HTTPError, RuntimeError):
                    return None

        began = time.perf_counter()
        prepared = [p for p in await asyncio.gather(*(one() for _ in range(count))) if p]
        prepare_seconds = time.perf_counter() - began
    finally:
        await traffic.close()
        stack.stop_app(BURST_API)
    ids = [run.booking_id for run, _ in prepared]
    paid_in_time = sum(1 for _, paid in prepared if paid < release.timestamp())
    await _wait_completed(engine, ids, release.timestamp() + GOAL_SECONDS + 60)
    async with engine.connect() as conn:
        rows = (await conn.execute(_BOOKINGS, {"ids": ids})).mappings().all()
        ledger = (
            (await conn.execute(_LEDGER, {"sender": stack.roles.operator.address})).mappings().all()
        )
    return _figures(rows, ledger, count, paid_in_time, prepare_seconds)


def _figures(
    rows: Any, ledger: Any, count: int, paid_in_time: int, prepare_seconds: float
) -> BurstFigures:
    sent_at = {row["intent"].rsplit(":", 1)[-1].lower(): row["created_at"] for row in ledger}
    to_sent: list[float] = []
    to_mined: list[float] = []
    to_completed: list[float] = []
    for row in rows:
        due = row["release_at"] + BLOCK_TIME_MARGIN
        sent = sent_at.get(row["chain_id"])
        for samples, value in (
            (to_sent, _seconds(sent, due)),
            (to_mined, _seconds(row["mined"], sent)),
            (to_completed, _seconds(row["completed"], row["release_at"])),
        ):
            if value is not None:
                samples.append(value)
    nonces = [row["nonce"] for row in ledger]
    intents = [row["intent"] for row in ledger if row["outcome"] != "dropped"]
    spans = [
        (row["created_at"].timestamp(), (row["settled_at"] or row["created_at"]).timestamp())
        for row in ledger
    ]
    last = max(to_completed, default=float("nan"))
    first_sent = min((s for s, _ in spans), default=0.0)
    last_settled = max((e for _, e in spans), default=0.0)
    return BurstFigures(
        bookings=count,
        prepared=len(rows),
        paid_before_release=paid_in_time,
        prepare_seconds=round(prepare_seconds, 1),
        completed=len(to_completed),
        within_goal=sum(1 for s in to_completed if s <= GOAL_SECONDS),
        last_completed_seconds=round(last, 1),
        completions_per_second=round(rate(len(spans), last_settled - first_sent), 1),
        timer_to_sent=Latency.of_seconds(to_sent),
        sent_to_mined=Latency.of_seconds(to_mined),
        release_to_completed=Latency.of_seconds(to_completed),
        max_in_flight=_max_overlap(spans),
        ledger_transactions=len(ledger),
        nonce_gaps=sum(1 for a, b in itertools.pairwise(nonces) if b != a + 1),
        intents_sent_twice=len(intents) - len(set(intents)),
    )


def add_burst(report: Report, f: BurstFigures) -> None:
    met = f.within_goal == f.prepared == f.bookings
    report.add(
        "6 scale",
        f"auto-complete burst, {f.bookings} released in one second",
        f"{f.within_goal}/{f.bookings} COMPLETED within 5 min; last at +{f.last_completed_seconds:.0f} s",
        f"{f.completions_per_second:.1f} completions/s, {f.max_in_flight} in flight at most",
        f"goal all within 300 s: {'met' if met else 'MISSED'}"
        + (
            ""
            if f.paid_before_release == f.bookings
            else f" ({f.prepared} prepared, {f.paid_before_release} paid before release)"
        ),
    )
    report.add(
        "6 scale",
        "burst: timer due -> sent / sent -> mined",
        f"p50 {f.timer_to_sent.p50:.0f} / p99 {f.timer_to_sent.p99:.0f} ms",
        f"p50 {f.sent_to_mined.p50:.0f} / p99 {f.sent_to_mined.p99:.0f} ms",
        f"{f.ledger_transactions} txs, {f.nonce_gaps} nonce gaps, "
        f"{f.intents_sent_twice} sent twice (must be 0, 0)",
    )
    report.data["auto_complete_burst"] = asdict(f)
