"""Issue 17's creation and streaming figures: POST /bookings (one update-with-start) beside a bare
update-with-start, and N event streams on one API process fed by its one LISTEN connection.

Streams: N streams over B bookings on a second API process of the stack; for each booking an
audit row is inserted straight into `booking_events` (what every transition writes) and the time
from that commit to each stream's frame is measured. Memory per stream is the process's RSS
growth over N; connections are `pg_stat_activity` rows named `bookme-api-stream*`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.bare import BareCreate
from bench.ceiling import bare_worker
from bench.results import Latency, Report
from bench.stack import BenchStack
from bench.traffic import BookingTraffic, Customer

STREAM_API = "api-streams"
STREAMING_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'bookme-api-stream%'"
)


@dataclass(frozen=True, kw_only=True)
class FanOut:
    streams: int
    bookings: int
    latency: Latency
    received: int
    rss_mb_before: float
    rss_mb_after: float
    kb_per_stream: float
    db_connections: int


async def creation_latency(traffic: BookingTraffic, *, count: int, concurrency: int) -> list[float]:
    """Round trips (s) of POST /bookings with an Idempotency-Key, `concurrency` at a time."""
    limit = asyncio.Semaphore(concurrency)
    samples: list[float] = []

    async def one() -> None:
        customer = traffic.customer()
        async with limit:
            began = time.perf_counter()
            response = await traffic.call(
                None,
                "POST",
                "/bookings",
                json=traffic.create_body(customer),
                extra={"Idempotency-Key": uuid.uuid4().hex},
            )
            samples.append(time.perf_counter() - began)
        if response.status_code != 201:
            raise RuntimeError(f"create: HTTP {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(one() for _ in range(count)))
    return samples


async def bare_creations(client: Client, *, count: int, concurrency: int) -> list[float]:
    """Round trips (s) of update-with-start of a workflow that writes once (a local activity)."""
    queue = f"bench-create-{uuid.uuid4().hex[:8]}"
    limit = asyncio.Semaphore(concurrency)
    samples: list[float] = []

    async def one() -> None:
        start = WithStartWorkflowOperation(
            BareCreate.run,
            id=f"bench-create-{uuid.uuid4()}",
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        async with limit:
            began = time.perf_counter()
            await client.execute_update_with_start_workflow(
                "recorded", start_workflow_operation=start, result_type=str
            )
            samples.append(time.perf_counter() - began)

    async with bare_worker(client, queue):
        await asyncio.gather(*(one() for _ in range(count)))
    return samples


async def _streaming_connections(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(STREAMING_CONNECTIONS))).scalar_one())


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _booking(traffic: BookingTraffic, customer: Customer) -> str:
    response = await traffic.call(None, "POST", "/bookings", json=traffic.create_body(customer))
    response.raise_for_status()
    return str(response.json()["id"])


async def _stream(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    ready: asyncio.Event,
    arrivals: list[float],
) -> None:
    """Read one stream: past its first event (`ready`), then note when the next one lands."""
    async with http.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        events = 0
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                events += 1
                if events == 1:
                    ready.set()
                else:
                    arrivals.append(time.perf_counter())
                    return


async def stream_fanout(
    stack: BenchStack, traffic: BookingTraffic, engine: AsyncEngine, *, streams: int, bookings: int
) -> FanOut:
    caps = {
        "BOOKME_MAX_STREAMS_PER_USER": str(streams),
        "BOOKME_MAX_STREAMS_PER_PROCESS": str(streams),
    }
    # The stack's own API listens too: count what this process adds.
    baseline = await _streaming_connections(engine)
    url = await stack.start_api(STREAM_API, caps)
    pid = stack.rss.pids[STREAM_API]
    owners = [traffic.customer() for _ in range(bookings)]
    ids = [await _booking(traffic, c) for c in owners]
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    arrivals: dict[str, list[float]] = {booking: [] for booking in ids}
    rss_before = _rss_mb(pid)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        readies, tasks = [], []
        for n in range(streams):
            booking, owner = ids[n % bookings], owners[n % bookings]
            ready = asyncio.Event()
            readies.append(ready)
            path = f"/bookings/{booking}/stream"
            tasks.append(
                asyncio.create_task(_stream(http, path, owner.headers, ready, arrivals[booking]))
            )
        await asyncio.gather(*(r.wait() for r in readies))
        rss_after = _rss_mb(pid)
        connections = await _streaming_connections(engine) - baseline
        changed = {}
        for booking in ids:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO booking_events (booking_id, kind, actor) "
                        "VALUES (:id, 'bench_change', 'bench')"
                    ),
                    {"id": booking},
                )
            changed[booking] = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    stack.stop_app(STREAM_API)
    samples = [t - changed[b] for b, times in arrivals.items() for t in times]
    return FanOut(
        streams=streams,
        bookings=bookings,
        latency=Latency.of_seconds(samples),
        received=len(samples),
        rss_mb_before=round(rss_before, 1),
        rss_mb_after=round(rss_after, 1),
        kb_per_stream=round((rss_after - rss_before) * 1024 / streams, 1),
        db_connections=connections,
    )


def add_creation(report: Report, ours: list[float], bare: list[float], concurrency: int) -> None:
    mine, floor = Latency.of_seconds(ours), Latency.of_seconds(bare)
    report.add(
        "6 scale",
        f"booking creation, concurrency {concurrency}",
        f"p50 {mine.p50:.0f} / p99 {mine.p99:.0f} ms",
        f"p50 {floor.p50:.0f} / p99 {floor.p99:.0f} ms bare update-with-start",
        f"p50 x{mine.p50 / floor.p50:.2f} of bare (goal <= 1.3)",
    )
    report.data.setdefault("creation", {})[concurrency] = {
        "latency": asdict(mine),
        "bare_latency": asdict(floor),
    }


def add_fanout(report: Report, f: FanOut) -> None:
    report.add(
        "6 scale",
        f"SSE fan-out, {f.streams} streams on {f.bookings} bookings",
        f"change -> frame p50 {f.latency.p50:.0f} / p99 {f.latency.p99:.0f} ms",
        f"{f.received}/{f.streams} received",
        f"{f.kb_per_stream:.0f} KB RSS per stream; {f.db_connections} DB connections (goal <= 2)",
    )
    data: dict[str, Any] = asdict(f)
    report.data["sse_fanout"] = data
