"""Issue 17: latency as the customer feels it, at a real confirmation depth.

The listener and an API run with N confirmations while anvil mines a block every T seconds;
one booking at a time is paid and its event stream watched. Measured from the moment the
payer's receipt exists (polled every RECEIPT_POLL_SECONDS): the stream's first `payment_seen`
frame (goal p50 <= 100 ms) and its PAID frame (goal p50 <= N x T + 100 ms), beside the
0-confirmation receipt -> PAID of the same run (automine, the default stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.results import Latency, Report
from bench.stack import BenchStack
from bench.traffic import BenchFailure, BookingTraffic, Customer, Lifecycle, light_load
from bookme.demo import booking_authorization_from_api

SECTION = "7 customer latency"
SEEN_GOAL_MS = 100.0
CONFIRMATIONS = 2
BLOCK_SECONDS = 1
RECEIPT_POLL_SECONDS = 0.002
FRAME_WAIT_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class SeenFigures:
    confirmations: int
    block_seconds: int
    seen: Latency  # receipt -> first payment_seen frame
    paid: Latency  # receipt -> PAID frame
    zero_conf_paid: Latency  # receipt -> PAID row, 0 confirmations, automine
    first_seen_confirmations: list[int]  # the n the first frame said ("payment seen, n of N")

    @property
    def paid_goal_ms(self) -> float:
        return self.confirmations * self.block_seconds * 1000 + SEEN_GOAL_MS


@dataclass
class _Frames:
    """One booking's event stream as it arrives: (event, data, time.time())."""

    got: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, http: httpx.AsyncClient, booking_id: str, headers: dict[str, str]) -> None:
        async with http.stream("GET", f"/bookings/{booking_id}/stream", headers=headers) as r:
            r.raise_for_status()
            event, data = "", ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data = line.partition(":")[2].strip()
                elif line == "" and data:
                    self.got.append((event, json.loads(data), time.time()))
                    self.arrived.set()
                    event, data = "", ""

    async def first(self, event: str, **expected: Any) -> tuple[dict[str, Any], float]:
        async with asyncio.timeout(FRAME_WAIT_SECONDS):
            while True:
                for name, data, at in self.got:
                    if name == event and all(data.get(k) == v for k, v in expected.items()):
                        return data, at
                self.arrived.clear()
                await self.arrived.wait()


async def _receipt_at(traffic: BookingTraffic, tx_hash: str) -> float:
    """When (time.time()) the payer's node first has the receipt."""
    deadline = time.monotonic() + FRAME_WAIT_SECONDS
    while time.monotonic() < deadline:
        receipt = await traffic.driver.rpc("eth_getTransactionReceipt", tx_hash)
        if receipt:
            at = time.time()
            if int(receipt["status"], 16) != 1:
                raise BenchFailure(f"payment {tx_hash} reverted")
            return at
        await asyncio.sleep(RECEIPT_POLL_SECONDS)
    raise BenchFailure(f"no receipt for {tx_hash}")


async def _one(traffic: BookingTraffic, http: httpx.AsyncClient) -> tuple[float, float, int]:
    """Pay one booking; (receipt -> payment_seen, receipt -> PAID, n of the first sighting)."""
    customer, run, signed = await traffic.prepared()
    frames = _Frames()
    reader = asyncio.create_task(frames.read(http, run.booking_id, customer.headers))
    try:
        await frames.first("status", to_status="PENDING_PAYMENT")
        receipt = await _receipt_at(traffic, await _send_payment(traffic, customer, signed))
        seen, seen_at = await frames.first("payment_seen", kind="payment_seen")
        _, paid_at = await frames.first("status", to_status="PAID")
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await reader
    first_n = int(str(seen["reason"]).split()[2])  # "payment seen, n of N confirmations"
    return seen_at - receipt, paid_at - receipt, first_n


async def _send_payment(traffic: BookingTraffic, customer: Customer, signed: dict[str, Any]) -> str:
    auth = booking_authorization_from_api(signed["authorization"])
    data = traffic.abi.encode_call(
        "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed["signature"][2:])
    )
    return await traffic.send(customer, data)


async def payment_seen_latency(
    stack: BenchStack,
    traffic: BookingTraffic,
    engine: AsyncEngine,
    *,
    count: int,
    zero_conf: list[Lifecycle],
) -> SeenFigures:
    """The section: 0-confirmation figures first (unless given), then N confirmations."""
    if not zero_conf:
        await light_load(traffic, 1)  # cold connections, not counted
        zero_conf = await light_load(traffic, count)
    depth = {"BOOKME_CONFIRMATIONS": str(CONFIRMATIONS)}
    await stack.start_listener("ws", depth, behind=CONFIRMATIONS)
    api_url = await stack.start_api("api-confirmations", depth)
    deep = BookingTraffic(stack, engine, api_url=api_url)
    samples: list[tuple[float, float, int]] = []
    try:
        await traffic.driver.rpc("evm_setIntervalMining", BLOCK_SECONDS)
        async with httpx.AsyncClient(base_url=api_url, timeout=FRAME_WAIT_SECONDS) as http:
            await _one(deep, http)  # cold connections, not counted
            for _ in range(count):
                samples.append(await _one(deep, http))
    finally:
        await traffic.driver.rpc("evm_setIntervalMining", 0)
        await traffic.driver.rpc("evm_setAutomine", True)
        await deep.close()
        await asyncio.to_thread(stack.stop_app, "api-confirmations")
        await stack.start_listener("ws")
    return SeenFigures(
        confirmations=CONFIRMATIONS,
        block_seconds=BLOCK_SECONDS,
        seen=Latency.of_seconds([s for s, _, _ in samples]),
        paid=Latency.of_seconds([p for _, p, _ in samples]),
        zero_conf_paid=Latency.of_seconds([r.paid_latency for r in zero_conf]),
        first_seen_confirmations=[n for _, _, n in samples],
    )


def add_seen(report: Report, f: SeenFigures) -> None:
    """Rows and JSON for the section."""
    depth = f"{f.confirmations} conf, a block every {f.block_seconds} s"
    seen_met = f.seen.p50 <= SEEN_GOAL_MS
    paid_met = f.paid.p50 <= f.paid_goal_ms
    at_zero = sum(1 for n in f.first_seen_confirmations if n == 0)
    report.add(
        SECTION,
        f"receipt->payment_seen frame, {depth}",
        f.seen.text(),
        "",
        f"goal p50<={SEEN_GOAL_MS:.0f}: {'met' if seen_met else 'MISSED'};"
        f" first frame said 0 of {f.confirmations} in {at_zero}/{len(f.first_seen_confirmations)}",
    )
    report.add(
        SECTION,
        f"receipt->PAID frame, {depth}",
        f.paid.text(),
        f"goal {f.confirmations} x {f.block_seconds * 1000} + 100 = {f.paid_goal_ms:.0f} ms",
        f"goal p50<={f.paid_goal_ms:.0f}: {'met' if paid_met else 'MISSED'}",
    )
    report.add(
        SECTION,
        "receipt->PAID row, 0 conf (automine)",
        f.zero_conf_paid.text(),
        "",
        "what `make bench` measures elsewhere",
    )
    data = asdict(f)
    data["paid_goal_ms"] = f.paid_goal_ms
    data["seen_goal_ms"] = SEEN_GOAL_MS
    data["seen_goal_met"] = seen_met if not math.isnan(f.seen.p50) else None
    data["paid_goal_met"] = paid_met if not math.isnan(f.paid.p50) else None
    report.data["payment_seen"] = data
