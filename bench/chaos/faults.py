"""The fault plan (drawn from the seed) and its injection, one fault at a time.

Process faults are kill -9 of one replica's process group, restarted after a random delay. Server
faults stop Postgres or the Temporal dev server and start them again on the same port and data;
the long Temporal outage keeps it down two minutes. Partitions hang the TCP path between one
worker replica and Postgres or one API replica and Temporal (bench/chaos/tcp_proxy.py). The
clock fault steps one worker's wall clock a minute forward (libfaketime) and back.
RPC faults go through the proxy only the listeners use. Reorgs use ``anvil_reorg`` with mining
paused: every transaction of the replaced blocks is put back at the same offset except the ones
dropped on purpose, as a real reorg re-includes most of what it orphans.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from bench.chaos.config import ChaosConfig
from bench.chaos.recovery import HealthProbe
from bench.chaos.restore import restore_from_backup
from bench.chaos.shape_faults import clock_step, kill_mid_burst, partition, temporal_outage
from bench.chaos.stack import APIS, LISTENERS, WORKERS, ChaosStack
from bench.chaos.workload import Workload
from chain.client import ChainClient

log = structlog.get_logger(__name__)


class FaultKind(StrEnum):
    KILL_WORKER = "kill -9 worker"
    KILL_WORKER_BURST = "kill -9 worker mid operator burst"
    KILL_LISTENER = "kill -9 listener (leader)"
    KILL_STANDBY = "kill -9 listener (standby)"
    KILL_API = "kill -9 api"
    RESTART_POSTGRES = "restart postgres"
    RESTART_TEMPORAL = "restart temporal"
    TEMPORAL_OUTAGE = "temporal down 2 min"
    PARTITION_WORKER_POSTGRES = "partition worker | postgres"
    PARTITION_API_TEMPORAL = "partition api | temporal"
    CLOCK_STEP = "worker clock +60s"
    WS_DROP = "rpc: websockets dropped"
    RPC_429 = "rpc: 429s"
    RPC_STALL = "rpc: stalled responses"
    LAGGING_HEAD = "rpc: lagging head"
    REORG_DEEP = "reorg deeper than confirmations"
    REORG_SHALLOW = "reorg shallower than confirmations"
    RESTORE_BACKUP = "postgres restored from a backup"


KILLS = (FaultKind.KILL_WORKER, FaultKind.KILL_LISTENER, FaultKind.KILL_STANDBY, FaultKind.KILL_API)
RPC = (FaultKind.WS_DROP, FaultKind.RPC_429, FaultKind.RPC_STALL, FaultKind.LAGGING_HEAD)
SERVERS = {"postgres": FaultKind.RESTART_POSTGRES, "temporal": FaultKind.RESTART_TEMPORAL}
# Production shape's own faults (the full run and the soak; the short test leaves them out).
PRODUCTION = (
    FaultKind.KILL_WORKER_BURST,
    FaultKind.PARTITION_WORKER_POSTGRES,
    FaultKind.PARTITION_API_TEMPORAL,
    FaultKind.TEMPORAL_OUTAGE,
    FaultKind.CLOCK_STEP,
)
PARTITIONS = (FaultKind.PARTITION_WORKER_POSTGRES, FaultKind.PARTITION_API_TEMPORAL)
# A dependency of the API is down during these: a 503 then is the right answer. A killed API
# replica is one too: what it held when it died is a 502 from the proxy, as from any balancer.
OUTAGES = frozenset(
    {
        FaultKind.RESTART_POSTGRES,
        FaultKind.RESTART_TEMPORAL,
        FaultKind.TEMPORAL_OUTAGE,
        FaultKind.KILL_WORKER,
        FaultKind.KILL_WORKER_BURST,
        FaultKind.KILL_API,
        FaultKind.CLOCK_STEP,  # the other worker replica is down meanwhile
        FaultKind.RESTORE_BACKUP,  # every app stopped for the restore, as the runbook says
        *PARTITIONS,
    }
)
# Which replicas a fault of each kind can hit (drawn from the seed).
TARGETS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.KILL_WORKER: WORKERS,
    FaultKind.KILL_WORKER_BURST: WORKERS,
    FaultKind.KILL_API: APIS,
    FaultKind.PARTITION_WORKER_POSTGRES: WORKERS,
    FaultKind.PARTITION_API_TEMPORAL: APIS,
    FaultKind.CLOCK_STEP: WORKERS,
}
# How long each kind lasts (seconds, drawn in this range); 1-5 s otherwise.
SECONDS: dict[FaultKind, tuple[float, float]] = {
    FaultKind.PARTITION_WORKER_POSTGRES: (10.0, 60.0),
    FaultKind.PARTITION_API_TEMPORAL: (10.0, 60.0),
    FaultKind.TEMPORAL_OUTAGE: (120.0, 120.0),
    FaultKind.CLOCK_STEP: (30.0, 60.0),
}


@dataclass(frozen=True, kw_only=True)
class PlannedFault:
    at: float  # seconds after the workload starts
    kind: FaultKind
    seconds: float  # downtime or duration
    target: str = ""  # the replica hit, for kinds that hit one of several


@dataclass(kw_only=True)
class FaultWindow:
    kind: FaultKind
    start: float  # monotonic
    end: float = 0.0
    detail: str = ""
    ok: bool = True
    # What the fault itself found wrong (a checkpoint that moved, a 503 without Retry-After).
    problems: list[str] = field(default_factory=list)
    # Seconds from the fault's end until every replica was ready and the listener caught up.
    recovery_seconds: float | None = None


# Faults other modules define, registered by one line each: kind -> (injection, is an outage).
# The injection gets the injector and the planned fault and returns the window's detail.
Injection = Callable[["FaultInjector", PlannedFault], Awaitable[str]]
PLUGGED: dict[FaultKind, Injection] = {FaultKind.RESTORE_BACKUP: restore_from_backup}


def plan_faults(config: ChaosConfig, rng: random.Random) -> list[PlannedFault]:
    """Every process fault, every RPC fault (or one, in a short run), the chosen server restarts
    and both reorgs; the rest of the budget drawn at random from the repeatable kinds."""
    kinds: list[FaultKind] = list(KILLS)
    short = config.faults <= len(KILLS) + 4
    kinds += [rng.choice(RPC)] if short else list(RPC)
    kinds += [SERVERS[name] for name in config.server_restarts]
    kinds += [FaultKind.REORG_DEEP, FaultKind.REORG_SHALLOW]
    if config.production_faults:
        kinds += [*PRODUCTION, *PLUGGED]
    repeatable = [*KILLS, *RPC, *(SERVERS[name] for name in config.server_restarts)]
    if config.production_faults:
        repeatable += [*PARTITIONS, FaultKind.KILL_WORKER_BURST]
    while len(kinds) < config.faults:
        kinds.append(rng.choice(repeatable))
    rng.shuffle(kinds)
    window = config.duration
    times = (
        [window * (i + 1) / (len(kinds) + 1) for i in range(len(kinds))]
        if config.even_faults
        else sorted(rng.uniform(0.1 * window, 0.85 * window) for _ in kinds)
    )
    return [
        PlannedFault(
            at=at,
            kind=kind,
            seconds=round(rng.uniform(*SECONDS.get(kind, (1.0, 5.0))), 1),
            target=rng.choice(TARGETS[kind]) if kind in TARGETS else "",
        )
        for at, kind in zip(times, kinds, strict=True)
    ]


class FaultInjector:
    """Runs the plan in order (faults never overlap), recording each one's window."""

    def __init__(self, stack: ChaosStack, chain: ChainClient, workload: Workload) -> None:
        self.stack = stack
        self.chain = chain
        self.workload = workload
        self.windows: list[FaultWindow] = []
        # Operator nonces a restore took out of the ledger: mined after the backup, before the
        # restore (the chain has them, the restored table cannot). The ledger check forgives
        # exactly these as gaps; everything else it checks still holds for them.
        self.forgotten_operator_nonces: list[range] = []
        self.probe = HealthProbe(stack, chain)
        self._recoveries: list[asyncio.Task[None]] = []

    async def run(self, plan: list[PlannedFault], started: float) -> None:
        for fault in plan:
            delay = started + fault.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            window = FaultWindow(kind=fault.kind, start=time.monotonic())
            self.windows.append(window)
            try:
                window.detail = await self._inject(fault)
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                window.ok = False
                window.detail = f"not injected: {type(exc).__name__}: {exc}"
                log.warning("chaos.fault_failed", kind=fault.kind.value, error=str(exc))
            window.end = time.monotonic()
            self._recoveries.append(asyncio.create_task(self._recovery(window)))
        await asyncio.gather(*self._recoveries)

    async def _recovery(self, window: FaultWindow) -> None:
        window.recovery_seconds = await self.probe.time_to_healthy(window.end)

    async def _inject(self, fault: PlannedFault) -> str:
        kind, seconds = fault.kind, fault.seconds
        stack = self.stack
        if kind in PLUGGED:
            return await PLUGGED[kind](self, fault)
        if kind in (FaultKind.KILL_WORKER, FaultKind.KILL_API):
            return await self._bounce(fault.target, seconds)
        if kind is FaultKind.KILL_WORKER_BURST:
            return await kill_mid_burst(stack, self.workload, fault.target, seconds)
        if kind in PARTITIONS:
            return await partition(stack, fault.target, seconds)
        if kind is FaultKind.TEMPORAL_OUTAGE:
            return await temporal_outage(stack, self.chain, seconds, self.windows[-1].problems)
        if kind is FaultKind.CLOCK_STEP:
            return await clock_step(stack, fault.target, seconds)
        if kind in (FaultKind.KILL_LISTENER, FaultKind.KILL_STANDBY):
            leader = await stack.leader() or LISTENERS[0]
            standbys = [n for n in LISTENERS if n != leader]
            pick = random.Random(fault.at).choice
            victim = leader if kind is FaultKind.KILL_LISTENER else pick(standbys)
            return await self._bounce(victim, seconds)
        if kind is FaultKind.RESTART_POSTGRES:
            await stack.restart_postgres(seconds)
            return f"down {seconds}s"
        if kind is FaultKind.RESTART_TEMPORAL:
            await stack.restart_temporal(seconds)
            return f"down {seconds}s"
        faults = stack.proxy.faults
        if kind is FaultKind.WS_DROP:
            await stack.proxy.drop_websockets()
            return "every listener websocket closed"
        if kind is FaultKind.RPC_429:
            faults.rate_limited = True
            await asyncio.sleep(seconds)
            faults.rate_limited = False
            return f"{seconds}s of HTTP 429"
        if kind is FaultKind.RPC_STALL:
            faults.stalled = True
            await asyncio.sleep(seconds)
            faults.stalled = False
            return f"{seconds}s without answers"
        if kind is FaultKind.LAGGING_HEAD:
            head = await self.chain.block_number()
            faults.lag_head = head - 3
            await asyncio.sleep(seconds)
            faults.lag_head = None
            return f"head held at {head - 3} for {seconds}s"
        if kind is FaultKind.REORG_DEEP:
            return await self._deep_reorg()
        return await self._reorg(depth=1, drop=frozenset())

    async def _bounce(self, app: str, seconds: float) -> str:
        await self.stack.kill(app)
        await asyncio.sleep(seconds)
        self.stack.revive(app)
        if app in APIS:
            await self.stack.wait_api(app)
        return f"{app} down {seconds}s"

    async def _deep_reorg(self) -> str:
        """Pay a booking, wait until the backend shows it PAID (confirmed), then reorg it away."""
        victim = self.workload.new_victim()
        await self.workload.run_one(victim)
        if victim.error or victim.payment_tx is None:
            raise RuntimeError(f"the victim booking failed: {victim.error}")
        await self.workload.wait_status(victim, {"PAID"}, 120)
        detail = await self._reorg(depth=None, drop=frozenset({victim.payment_tx}))
        return f"{detail}; dropped the payment of booking {victim.booking_id}"

    async def _reorg(self, *, depth: int | None, drop: frozenset[str]) -> str:
        chain = self.chain
        await chain.request("evm_setIntervalMining", [0])
        try:
            head = await chain.block_number()
            if depth is None:
                (tx,) = drop
                receipt = await chain.get_transaction_receipt(tx)
                if receipt is None:
                    raise RuntimeError(f"{tx} is not mined")
                depth = head - receipt.block_number + 1
            keep: list[list[object]] = []
            for offset, number in enumerate(range(head - depth + 1, head + 1)):
                block = await chain.request("eth_getBlockByNumber", [hex(number), False])
                for tx_hash in block["transactions"]:
                    if tx_hash.lower() in {d.lower() for d in drop}:
                        continue
                    raw = await chain.request("eth_getRawTransactionByHash", [tx_hash])
                    keep.append([raw, offset])
            await chain.request("anvil_reorg", [depth, keep])
        finally:
            await chain.request("evm_setIntervalMining", [1])
        for tx in drop:
            if await chain.get_transaction_receipt(tx) is not None:
                raise RuntimeError(f"{tx} survived the reorg")
        return f"depth {depth} at head {head}, {len(keep)} txs re-included"
