"""Per-hop timings of the event path, from timestamps the system already keeps.

receipt visible (bench clock) -> stored by the listener (blockchain_events.received_at) ->
signal in the workflow's history -> the workflow task that handles it starts -> PAID visible in
Postgres (bench poll). The PAID write is a local activity run inside that workflow task, so the
last hop is the task's own work plus the write. Every clock is this machine's.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.traffic import Lifecycle

HOPS = (
    "receipt -> listener stored the log",
    "stored -> signal in workflow history",
    "signal -> workflow task started",
    "workflow task started -> PAID visible in Postgres (local activity in the task)",
)


@dataclass(frozen=True, kw_only=True)
class HopStats:
    name: str
    n: int
    p50_ms: float
    p95_ms: float


async def _one(client: Client, engine: AsyncEngine, run: Lifecycle) -> list[float] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT extract(epoch FROM received_at) FROM blockchain_events"
                    " WHERE lower(tx_hash) = lower(:tx) ORDER BY id LIMIT 1"
                ),
                {"tx": run.payment_tx},
            )
        ).first()
    if row is None:
        return None
    stored = float(row[0])
    history = await client.get_workflow_handle(f"booking-{run.booking_id}").fetch_history()
    signalled = task = None
    for event in history.events:
        at = event.event_time.seconds + event.event_time.nanos / 1e9
        kind = event.event_type
        if signalled is None:
            if (
                kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                and event.workflow_execution_signaled_event_attributes.signal_name
                == "payment_confirmed"
            ):
                signalled = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task = at
            break
    if signalled is None or task is None:
        return None
    points = [run.receipt_visible, stored, signalled, task, run.paid_seen]
    return [b - a for a, b in itertools.pairwise(points)]


async def hop_timings(client: Client, engine: AsyncEngine, runs: list[Lifecycle]) -> list[HopStats]:
    per_hop: list[list[float]] = [[] for _ in HOPS]
    for run in runs:
        deltas = await _one(client, engine, run)
        if deltas is None:
            continue
        for samples, delta in zip(per_hop, deltas, strict=True):
            samples.append(delta * 1000)
    return [
        HopStats(
            name=name,
            n=len(samples),
            p50_ms=statistics.median(samples) if samples else float("nan"),
            p95_ms=sorted(samples)[int(0.95 * (len(samples) - 1))] if samples else float("nan"),
        )
        for name, samples in zip(HOPS, per_hop, strict=True)
    ]
