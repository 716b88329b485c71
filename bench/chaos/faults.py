"""The fault plan (drawn from the seed) and its injection, one fault at a time.

Process faults are kill -9 of the app's process group, restarted after a random delay. Server
faults stop Postgres or the Temporal dev server and start them again on the same port and data.
RPC faults go through the proxy only the listeners use. Reorgs use ``anvil_reorg`` with mining
paused: every transaction of the replaced blocks is put back at the same offset except the ones
dropped on purpose, as a real reorg re-includes most of what it orphans.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from enum import StrEnum

import structlog

from bench.chaos.config import ChaosConfig
from bench.chaos.stack import LISTENERS, ChaosStack
from bench.chaos.workload import Workload
from chain.client import ChainClient

log = structlog.get_logger(__name__)


class FaultKind(StrEnum):
    KILL_WORKER = "kill -9 worker"
    KILL_LISTENER = "kill -9 listener (leader)"
    KILL_STANDBY = "kill -9 listener (standby)"
    KILL_API = "kill -9 api"
    RESTART_POSTGRES = "restart postgres"
    RESTART_TEMPORAL = "restart temporal"
    WS_DROP = "rpc: websockets dropped"
    RPC_429 = "rpc: 429s"
    RPC_STALL = "rpc: stalled responses"
    LAGGING_HEAD = "rpc: lagging head"
    REORG_DEEP = "reorg deeper than confirmations"
    REORG_SHALLOW = "reorg shallower than confirmations"


KILLS = (FaultKind.KILL_WORKER, FaultKind.KILL_LISTENER, FaultKind.KILL_STANDBY, FaultKind.KILL_API)
RPC = (FaultKind.WS_DROP, FaultKind.RPC_429, FaultKind.RPC_STALL, FaultKind.LAGGING_HEAD)
SERVERS = {"postgres": FaultKind.RESTART_POSTGRES, "temporal": FaultKind.RESTART_TEMPORAL}
# A dependency of the API is down during these: a 503 then is the right answer.
OUTAGES = frozenset({FaultKind.RESTART_POSTGRES, FaultKind.RESTART_TEMPORAL, FaultKind.KILL_WORKER})
APP_OF = {
    FaultKind.KILL_WORKER: "worker",
    FaultKind.KILL_API: "api",
}


@dataclass(frozen=True, kw_only=True)
class PlannedFault:
    at: float  # seconds after the workload starts
    kind: FaultKind
    seconds: float  # downtime or duration


@dataclass(kw_only=True)
class FaultWindow:
    kind: FaultKind
    start: float  # monotonic
    end: float = 0.0
    detail: str = ""
    ok: bool = True


def plan_faults(config: ChaosConfig, rng: random.Random) -> list[PlannedFault]:
    """Every process fault, every RPC fault (or one, in a short run), the chosen server restarts
    and both reorgs; the rest of the budget drawn at random from the repeatable kinds."""
    kinds: list[FaultKind] = list(KILLS)
    short = config.faults <= len(KILLS) + 4
    kinds += [rng.choice(RPC)] if short else list(RPC)
    kinds += [SERVERS[name] for name in config.server_restarts]
    kinds += [FaultKind.REORG_DEEP, FaultKind.REORG_SHALLOW]
    repeatable = [*KILLS, *RPC, *(SERVERS[name] for name in config.server_restarts)]
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
        PlannedFault(at=at, kind=kind, seconds=round(rng.uniform(1.0, 5.0), 1))
        for at, kind in zip(times, kinds, strict=True)
    ]


class FaultInjector:
    """Runs the plan in order (faults never overlap), recording each one's window."""

    def __init__(self, stack: ChaosStack, chain: ChainClient, workload: Workload) -> None:
        self.stack = stack
        self.chain = chain
        self.workload = workload
        self.windows: list[FaultWindow] = []

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

    async def _inject(self, fault: PlannedFault) -> str:
        kind, seconds = fault.kind, fault.seconds
        stack = self.stack
        if kind in APP_OF:
            return await self._bounce(APP_OF[kind], seconds)
        if kind in (FaultKind.KILL_LISTENER, FaultKind.KILL_STANDBY):
            leader = await stack.leader()
            leader = leader or LISTENERS[0]
            other = next(n for n in LISTENERS if n != leader)
            return await self._bounce(leader if kind is FaultKind.KILL_LISTENER else other, seconds)
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
        if app == "api":
            await self.stack.wait_api()
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
