"""When the stack is healthy again after a fault, for the per-fault recovery time.

Healthy means every replica does its job again: each API replica's ``/health/ready`` answers 200
on its own port (Postgres and Temporal reachable from it), each worker replica's current process
polls the task queue (its ``pid@host`` identity among Temporal's pollers), one listener holds the
lock, and the listener's checkpoint is back within `LAG_BOUND` blocks of the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import structlog
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.chaos.stack import APIS, WORKERS, ChaosStack
from bookme.settings import Settings
from chain.client import ChainClient
from db.engine import make_engine

log = structlog.get_logger(__name__)

# The checkpoint trails the head by the confirmations; this many blocks more is still caught up.
LAG_MARGIN = 3
PROBE_SECONDS = 1.0
GIVE_UP_SECONDS = 300.0


async def checkpoint(stack: ChaosStack) -> int | None:
    """The listener's checkpoint (None while Postgres cannot say)."""
    engine = make_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            value = await conn.scalar(text("SELECT max(last_block_number) FROM chain_cursor"))
        return int(value) if value is not None else None
    except Exception:  # Postgres down: nobody can tell
        return None
    finally:
        await engine.dispose()


class HealthProbe:
    def __init__(self, stack: ChaosStack, chain: ChainClient) -> None:
        self.stack = stack
        self.chain = chain
        self.lag_bound = stack.timers.confirmations + LAG_MARGIN
        self._temporal: Client | None = None

    async def unhealthy(self) -> list[str]:
        """What is not healthy right now (empty: all of it is)."""
        stack = self.stack
        problems = [name for name, pid in stack.pids().items() if pid is None]
        async with httpx.AsyncClient(timeout=3.0) as http:
            for api in APIS:
                try:
                    answer = await http.get(f"{stack.replica_url(api)}/health/ready")
                    if answer.status_code != 200:
                        problems.append(f"{api} ready {answer.status_code}")
                except httpx.HTTPError:
                    problems.append(f"{api} not answering")
        problems += await self._workers_polling()
        if await stack.leader() is None:
            problems.append("no listener leader")
        head, cursor = await self.chain.block_number(), await checkpoint(stack)
        if cursor is None or head - cursor > self.lag_bound:
            problems.append(f"listener lag {None if cursor is None else head - cursor}")
        return problems

    async def _workers_polling(self) -> list[str]:
        stack = self.stack
        try:
            self._temporal = self._temporal or await Client.connect(
                stack.temporal_server.address, namespace=stack.temporal_server.namespace
            )
            described = await self._temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=stack.temporal_server.namespace,
                    task_queue=TaskQueue(name=Settings().task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                )
            )
        except Exception:  # Temporal down
            self._temporal = None
            return ["temporal unreachable"]
        pollers = {p.identity.split("@", 1)[0] for p in described.pollers}
        pids = stack.pids()
        return [f"{w} not polling" for w in WORKERS if str(pids.get(w)) not in pollers]

    async def time_to_healthy(self, since: float) -> float | None:
        """Seconds from `since` (monotonic) until healthy; None if not within GIVE_UP_SECONDS."""
        last: list[str] = []
        while time.monotonic() - since < GIVE_UP_SECONDS:
            with contextlib.suppress(Exception):
                last = await self.unhealthy()
                if not last:
                    return round(time.monotonic() - since, 1)
            await asyncio.sleep(PROBE_SECONDS)
        log.warning("chaos.not_recovered", problems=last)
        return None
