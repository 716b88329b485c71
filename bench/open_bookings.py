"""Issue 17's open bookings: N booking workflows waiting at once, and what they cost.

The bookings come through POST /bookings of an API process of the stack whose payment deadline
is 31 days, appointments 1-30 days ahead: each workflow records its row and then sleeps on one
timer, as a paid booking sleeps until its release (paying 20 000 on anvil would take the time
box several times over, and a paid booking's history is a few events longer). At each step
(N/4, N/2, N by default) the run records the creation rate, the worker's RSS (bounded by its
workflow cache, so it should stay flat in N), the Temporal server's RSS (the dev server keeps
its SQLite database in memory, so its growth is the database's) and the history each booking
adds. Then the worker restarts: the time until a cache's worth of bookings (the most recent)
answer a query again, each replayed from its history by the new process.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError

from bench.results import Latency, Report, rate
from bench.stack import BenchStack
from bench.traffic import BenchFailure, BookingTraffic, Customer, Lifecycle
from bookme.settings import Settings
from workflows import BookingWorkflow, booking_workflow_id

OPEN_API = "api-open"
CONCURRENCY = 16
HISTORY_SAMPLE = 20
QUERY_ATTEMPTS = 600  # 2 minutes of a worker not polling yet
DEADLINE_SECONDS = 31 * 86400


@dataclass(frozen=True, kw_only=True)
class OpenStep:
    bookings: int
    created_per_second: float
    creation: Latency
    worker_rss_mb: float
    temporal_rss_mb: float


@dataclass(frozen=True, kw_only=True)
class OpenFigures:
    steps: list[OpenStep]
    creation_failures: int
    history_events: float
    history_bytes: float
    temporal_kb_per_booking: float
    cache_size: int
    restart_first_answer_seconds: float
    restart_all_answered_seconds: float
    warm_query: Latency
    cold_query: Latency


def _rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def _temporal_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "start-dev" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _body(traffic: BookingTraffic, customer: Customer) -> dict[str, str]:
    ahead = timedelta(days=random.uniform(1, 30))
    when = (datetime.now(UTC) + ahead).replace(microsecond=0)
    return traffic.create_body(customer) | {"scheduled_at": when.isoformat()}


async def _create(traffic: BookingTraffic, count: int, ids: list[str]) -> list[float]:
    limit = asyncio.Semaphore(CONCURRENCY)
    samples: list[float] = []

    async def one() -> None:
        customer, run = traffic.customer(), Lifecycle()
        async with limit:
            began = time.perf_counter()
            try:
                await traffic.create(customer, run, _body(traffic, customer))
            except (BenchFailure, httpx.HTTPError) as exc:
                traffic.failures.append(f"{type(exc).__name__}: {exc}"[:300])
                return
            samples.append(time.perf_counter() - began)
        ids.append(run.booking_id)

    await asyncio.gather(*(one() for _ in range(count)))
    return samples


async def _query_all(client: Client, ids: list[str]) -> tuple[list[float], float]:
    """Query each booking's workflow (`CONCURRENCY` at a time); latencies and the first answer."""
    limit = asyncio.Semaphore(CONCURRENCY)
    samples: list[float] = []
    first: list[float] = []

    async def one(booking: str) -> None:
        handle = client.get_workflow_handle(booking_workflow_id(booking))
        async with limit:
            began = time.perf_counter()
            for _ in range(QUERY_ATTEMPTS):
                try:
                    await handle.query(BookingWorkflow.status, rpc_timeout=timedelta(seconds=120))
                    break
                except RPCError:
                    # Until the new worker polls, the server refuses queries at once.
                    await asyncio.sleep(0.2)
            else:
                raise BenchFailure(f"booking {booking} not answering queries")
            samples.append(time.perf_counter() - began)
            first.append(time.perf_counter())

    await asyncio.gather(*(one(b) for b in ids))
    return samples, min(first)


async def _history(client: Client, ids: list[str]) -> tuple[float, float]:
    """Mean events and bytes of history per booking, on a sample."""
    sample = random.sample(ids, min(HISTORY_SAMPLE, len(ids)))
    events, size = 0, 0
    for booking in sample:
        info = (
            await client.get_workflow_handle(booking_workflow_id(booking)).describe()
        ).raw_description.workflow_execution_info
        events += info.history_length
        size += info.history_size_bytes
    return events / len(sample), size / len(sample)


async def open_bookings(
    stack: BenchStack, engine: AsyncEngine, client: Client, *, steps: list[int]
) -> OpenFigures:
    url = await stack.start_api(
        OPEN_API, {"BOOKME_PAYMENT_DEADLINE_SECONDS": str(DEADLINE_SECONDS)}
    )
    creator = BookingTraffic(stack, engine, api_url=url)
    temporal = _temporal_processes()
    temporal_before = _rss_mb(temporal)
    ids: list[str] = []
    measured: list[OpenStep] = []
    try:
        for target in steps:
            began = time.perf_counter()
            samples = await _create(creator, target - len(ids), ids)
            seconds = time.perf_counter() - began
            await asyncio.sleep(2.0)  # the last workflow tasks land
            stack.rss.sample()
            measured.append(
                OpenStep(
                    bookings=len(ids),
                    created_per_second=round(rate(len(samples), seconds), 1),
                    creation=Latency.of_seconds(samples),
                    worker_rss_mb=round(_rss_mb([psutil.Process(stack.rss.pids["worker"])]), 1),
                    temporal_rss_mb=round(_rss_mb(temporal), 1),
                )
            )
            print(f"[bench] open bookings: {measured[-1]}", flush=True)  # noqa: T201 - progress
    finally:
        await creator.close()
        stack.stop_app(OPEN_API)
    events, size = await _history(client, ids)
    cache = Settings().worker_max_cached_workflows
    recent = ids[-cache:]
    warm, _ = await _query_all(client, recent)
    restarted = await _restart_worker(stack)
    cold, first = await _query_all(client, recent)
    done = time.perf_counter()
    return OpenFigures(
        steps=measured,
        creation_failures=len(creator.failures),
        history_events=round(events, 1),
        history_bytes=round(size),
        temporal_kb_per_booking=round(
            (measured[-1].temporal_rss_mb - temporal_before) * 1024 / max(1, len(ids)), 2
        ),
        cache_size=len(recent),
        restart_first_answer_seconds=round(first - restarted, 2),
        restart_all_answered_seconds=round(done - restarted, 2),
        warm_query=Latency.of_seconds(warm),
        cold_query=Latency.of_seconds(cold),
    )


async def _restart_worker(stack: BenchStack) -> float:
    """Stop the worker (SIGTERM, graceful) and start a new one; when the new one was started."""
    await asyncio.to_thread(stack.stop_app, "worker")
    began = time.perf_counter()
    await asyncio.to_thread(stack._start_app, "worker", (sys.executable, "worker.py"), {})
    return began


def add_open_bookings(report: Report, f: OpenFigures) -> None:
    for step in f.steps:
        report.add(
            "6 scale",
            f"open bookings: {step.bookings} waiting",
            f"created {step.created_per_second:.0f}/s (p50 {step.creation.p50:.0f} / "
            f"p99 {step.creation.p99:.0f} ms)",
            f"worker RSS {step.worker_rss_mb:.0f} MB, Temporal RSS {step.temporal_rss_mb:.0f} MB",
            "goal: worker RSS flat in N (cache-bounded)",
        )
    report.add(
        "6 scale",
        "open bookings: Temporal per booking",
        f"{f.history_events:.0f} history events, {f.history_bytes / 1024:.1f} KB history",
        f"{f.temporal_kb_per_booking:.1f} KB server RSS (in-memory SQLite) per booking",
        f"{f.creation_failures} creations failed after the documented retries",
    )
    report.add(
        "6 scale",
        f"worker restart: {f.cache_size} cached bookings running again",
        f"all answered {f.restart_all_answered_seconds:.1f} s after start "
        f"(first {f.restart_first_answer_seconds:.1f} s)",
        f"query warm p50 {f.warm_query.p50:.0f} ms, after restart p50 {f.cold_query.p50:.0f} ms",
    )
    data: dict[str, Any] = asdict(f)
    report.data["open_bookings"] = data
