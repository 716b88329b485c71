"""The faults production shape adds: a worker killed mid operator burst, partitions, Temporal
down for two minutes, and a worker's clock stepped forward.

Each returns the fault window's detail; what it finds wrong by itself goes into `problems`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bench.chaos.recovery import checkpoint
from bench.chaos.stack import WORKERS, ChaosStack
from bench.chaos.workload import Workload
from chain.client import ChainClient

# The clock fault's step: the worker's wall clock runs this far ahead from then on.
CLOCK_STEP = "+60"
# How far into a burst the worker dies: its first transactions are signed and in flight.
INTO_BURST_SECONDS = 1.5
BURST_WAIT_SECONDS = 150.0


async def kill_mid_burst(stack: ChaosStack, workload: Workload, worker: str, seconds: float) -> str:
    """kill -9 of `worker` just after the next bunch of auto-completions falls due."""
    burst = workload.next_burst(within=BURST_WAIT_SECONDS)
    due = 0
    if burst is not None:
        at, due = burst
        await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds() + INTO_BURST_SECONDS))
    await stack.kill(worker)
    await asyncio.sleep(seconds)
    stack.revive(worker)
    if burst is None:
        return f"{worker} down {seconds}s (no operator burst due within {BURST_WAIT_SECONDS:.0f}s)"
    return (
        f"{worker} killed {INTO_BURST_SECONDS}s into a burst of {due} auto-completions,"
        f" down {seconds}s"
    )


async def partition(stack: ChaosStack, app: str, seconds: float) -> str:
    """`app`'s path to Postgres (a worker) or Temporal (an API replica) hangs for `seconds`."""
    proxy = stack.partitions[app]
    proxy.partition()
    try:
        await asyncio.sleep(seconds)
    finally:
        proxy.heal()
    return f"{proxy.name} hung {seconds}s"


async def temporal_outage(
    stack: ChaosStack, chain: ChainClient, seconds: float, problems: list[str]
) -> str:
    """Temporal down `seconds`: the listener must hold its checkpoint before any escrow log it
    could not signal (it buffers), and deliver everything once Temporal is back."""
    await asyncio.to_thread(stack.temporal_server.stop)
    started = time.monotonic()
    # The listener notices on its next delivery; give it a few blocks before the first reading.
    await asyncio.sleep(min(10.0, seconds / 4))
    first = await checkpoint(stack)
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    last = await checkpoint(stack)
    await asyncio.to_thread(stack.temporal_server.start)
    if first is None or last is None:
        problems.append("checkpoint unreadable during the Temporal outage")
        return f"down {seconds}s; checkpoint unreadable"
    passed = []
    if last > first:
        passed = await chain.get_logs(
            from_block=first + 1, to_block=last, address=stack.deployment.escrow
        )
    if passed:
        problems.append(
            f"checkpoint moved {first} -> {last} past {len(passed)} escrow logs while Temporal"
            " was down"
        )
    return f"down {seconds}s; checkpoint {first} -> {last}, {len(passed)} escrow logs passed"


async def clock_step(stack: ChaosStack, worker: str, seconds: float) -> str:
    """Step `worker`'s clock (wall and monotonic, libfaketime) a minute forward for good, then
    kill -9 another replica so the stepped one carries the operator transactions a while."""
    stack.set_clock(worker, CLOCK_STEP)
    others = [w for w in WORKERS if w != worker]
    for other in others:
        await stack.kill(other)
    await asyncio.sleep(seconds)
    for other in others:
        stack.revive(other)
    return f"{worker} clock {CLOCK_STEP}s from now on; {', '.join(others)} down {seconds}s"
