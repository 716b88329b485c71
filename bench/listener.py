"""Listener figures: raw eth_getLogs, ingest to a no-op sink and to no-op workflows, the bare
signal+activity ceiling, the listener end to end into that workflow (catch-up, one payment per
block), and live mined -> signalled / -> activity latency with 0 confirmations.

Runs in-process listeners (our `Listener` class) against the bench stack's servers, each with a
fresh database, on a stub contract that emits escrow-shaped logs without signing costs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.results import Latency, Report, rate
from bookme.embedded.anvil import AnvilNode
from bookme.settings import default_booking_policy
from chain.client import ChainClient
from chain.deploy import Deployment
from chain.events import ESCROW_EVENT_TOPICS
from db.engine import make_engine
from db.migrate import upgrade_async
from listener.config import ListenerConfig
from listener.service import Listener
from listener.sink import SignalOutcome, SignalSink
from listener.temporal_sink import TemporalSignalSink
from tests.listener.driver import EscrowDriver, EventEmitter
from tests.listener.receivers import BENCH_APPLY_ACTIVITY, ApplyOnce, ApplyOnceLocal, TakeSignal
from workflows.sandbox import workflow_runner
from workflows.types import BookingPolicy, ChainEventSignal

WAIT_SECONDS = 600.0
EMIT_CHUNK = 200  # a bound, not a goal: a stuck run fails instead of hanging


def _fresh_ids(events: list[ChainEventSignal]) -> list[ChainEventSignal]:
    return [dataclasses.replace(e, chain_booking_id="0x" + uuid.uuid4().hex * 2) for e in events]


class TimedSink:
    """No-op sink that notes when each event was signalled."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.events: list[ChainEventSignal] = []

    async def deliver(self, booking_id: str, event: ChainEventSignal) -> SignalOutcome:
        return await self.orphan(event)

    async def orphan(self, event: ChainEventSignal) -> SignalOutcome:
        self.at.setdefault(event.identity.tx_hash, time.perf_counter())
        self.events.append(event)
        return SignalOutcome.SIGNALLED

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        return SignalOutcome.SIGNALLED


class Applied:
    """The bench activity: counts applications and notes when each happened."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.target = 0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.at.clear()
        self.target = count
        self.done.clear()

    @activity.defn(name=BENCH_APPLY_ACTIVITY)
    async def apply(self, event: ChainEventSignal) -> None:
        self.at.setdefault(event.identity.tx_hash, time.perf_counter())
        if len(self.at) >= self.target:
            self.done.set()


@dataclass
class ListenerFigures:
    """events/s unless named otherwise."""

    events: int = 0
    applied: int = 0  # by the end-to-end run before its time limit
    raw_get_logs: float = 0.0
    ingest_noop_sink: float = 0.0
    ingest_noop_workflow: float = 0.0
    # Bare workflows, one signal + one activity: a regular activity (the ceiling) and a
    # local one (the shape of the booking's PAID write, which the end-to-end run uses).
    ceiling_before: float = 0.0
    ceiling_after: float = 0.0
    ceiling_local_before: float = 0.0
    ceiling_local_after: float = 0.0
    end_to_end: float = 0.0
    live_signalled: Latency | None = None
    live_applied: Latency | None = None
    log: list[str] = field(default_factory=list)

    @property
    def ceiling(self) -> float:
        return max(self.ceiling_before, self.ceiling_after)

    @property
    def ceiling_local(self) -> float:
        return max(self.ceiling_local_before, self.ceiling_local_after)


class ListenerBench:
    def __init__(
        self,
        node: AnvilNode,
        deployment: Deployment,
        temporal: Client,
        new_database: Callable[[], str],
    ) -> None:
        self.node = node
        self.new_database = new_database
        self.deployment = deployment
        self.temporal = temporal
        self.figures = ListenerFigures()
        self.applied = Applied()

    async def database(self) -> str:
        url = self.new_database()
        await upgrade_async(url)
        return url

    async def listener(
        self, sink: SignalSink, contract: str, start: int, urls: list[str] | None = None
    ) -> tuple[Listener, Callable[[], Awaitable[None]]]:
        node = self.node
        engine = make_engine(await self.database(), pool_size=4)
        client = ChainClient(urls or [node.http_url])
        listener = Listener(
            config=ListenerConfig(
                chain_id=node.chain_id,
                contract_address=contract,
                confirmations=0,
                start_block=start,
                poll_interval=1.0,
                max_block_range=2000,
                head_stale_after=30.0,
            ),
            client=client,
            engine=engine,
            sink=sink,
        )

        async def close() -> None:
            await client.close()
            await engine.dispose()

        return listener, close

    def _rate(self, label: str, count: int, seconds: float) -> float:
        value = rate(count, seconds)
        line = f"{label}: {value:.0f} events/s ({count} in {seconds:.2f}s)"
        self.figures.log.append(line)
        print(f"[bench]   {line}", flush=True)  # noqa: T201 - progress, kept if the section is cut
        return value

    async def run(
        self, events: int, live: int, ceiling_sample: int = 1000, e2e_seconds: float = 600
    ) -> ListenerFigures:
        """`events` payments one per block; the ceilings and the no-op workflow ingest run on
        `ceiling_sample` events (a rate needs no more, and each costs workflows)."""
        self.ceiling_sample = ceiling_sample
        self.e2e_seconds = e2e_seconds
        driver = EscrowDriver(self.node, self.deployment)
        # The emitter sends from accounts[6]; give it the last dev account, which the lifecycle
        # traffic leaves alone, so no other sender's transactions share its nonce sequence.
        accounts = list(driver.accounts)
        accounts[6], accounts[-1] = accounts[-1], accounts[6]
        driver.accounts = tuple(accounts)
        try:
            await self._catch_up(driver, events)
            if live:
                await self._live(driver, live)
        finally:
            await driver.close()
        return self.figures

    async def _catch_up(self, driver: EscrowDriver, events: int) -> None:
        f = self.figures
        f.events = events
        emitter = EventEmitter(driver)
        await emitter.install()
        start = await driver.head() + 1
        began = time.perf_counter()
        # In chunks, each waited for: thousands sent unanswered left one never mined here.
        for low in range(0, events, EMIT_CHUNK):
            await emitter.emit(min(EMIT_CHUNK, events - low), senders=1)
        self._rate("setup: payments mined, one per block", events, time.perf_counter() - began)
        head = await driver.head()

        async with ChainClient([self.node.http_url]) as client:
            began = time.perf_counter()
            total = 0
            for low in range(start, head + 1, 2000):
                logs = await client.get_logs(
                    from_block=low,
                    to_block=min(head, low + 1999),
                    address=emitter.address,
                    topics=[list(ESCROW_EVENT_TOPICS)],
                )
                total += len(logs)
            f.raw_get_logs = self._rate("raw eth_getLogs", total, time.perf_counter() - began)

        sink = TimedSink()
        listener, close = await self.listener(sink, emitter.address, start)
        began = time.perf_counter()
        await listener.sync_once(up_to=head)
        f.ingest_noop_sink = self._rate(
            "ingest, no-op sink", len(sink.events), time.perf_counter() - began
        )
        await close()
        # Same payloads under fresh chain booking ids (fresh workflow ids) for the ceilings:
        # orphan workflow ids come from chain booking ids and are never reused.
        sample = sink.events[: self.ceiling_sample]
        policy = default_booking_policy(confirmations=0)
        f.ceiling_before = await self._ceiling(policy, _fresh_ids(sample), "before", ApplyOnce)
        f.ceiling_local_before = await self._ceiling(
            policy, _fresh_ids(sample), "before", ApplyOnceLocal
        )
        await self._end_to_end(emitter.address, start, events, policy)
        f.ceiling_after = await self._ceiling(policy, _fresh_ids(sample), "after", ApplyOnce)
        f.ceiling_local_after = await self._ceiling(
            policy, _fresh_ids(sample), "after", ApplyOnceLocal
        )

        # The listener's ingest with real signals, on a batch of its own (fresh workflow ids).
        start = await driver.head() + 1
        await emitter.emit(len(sample), senders=1)
        queue = f"noop-{uuid.uuid4().hex[:8]}"
        async with Worker(
            self.temporal,
            task_queue=queue,
            workflows=[TakeSignal],
            workflow_runner=workflow_runner(),
        ):
            noop_sink = TemporalSignalSink(self.temporal, policy=policy, task_queue=queue)
            listener, close = await self.listener(noop_sink, emitter.address, start)
            began = time.perf_counter()
            await listener.sync_once()
            f.ingest_noop_workflow = self._rate(
                "ingest, signal-with-start to a no-op workflow",
                len(sample),
                time.perf_counter() - began,
            )
            await close()

    async def _end_to_end(
        self, contract: str, start: int, events: int, policy: BookingPolicy
    ) -> None:
        """Stored, signalled, (local) activity applied, until all are: a catch-up is over when
        the last event is applied, and the first minute alone (the listener signalling
        thousands of workflows at once) says little. `e2e_seconds` only bounds a stuck run."""
        f = self.figures
        queue = f"e2e-{uuid.uuid4().hex[:8]}"
        async with Worker(
            self.temporal,
            task_queue=queue,
            workflows=[ApplyOnceLocal],
            activities=[self.applied.apply],
            workflow_runner=workflow_runner(),
        ):
            e2e_sink = TemporalSignalSink(self.temporal, policy=policy, task_queue=queue)
            listener, close = await self.listener(e2e_sink, contract, start)
            self.applied.expect(events)
            began = time.perf_counter()
            syncing = asyncio.create_task(listener.sync_once())
            try:
                await asyncio.wait_for(self.applied.done.wait(), self.e2e_seconds)
            except TimeoutError:
                pass
            finally:
                syncing.cancel()
                await asyncio.gather(syncing, return_exceptions=True)
            f.applied = len(self.applied.at)
            f.end_to_end = self._rate(
                "end to end: stored, signalled, local activity applied",
                f.applied,
                time.perf_counter() - began,
            )
            await close()

    async def _ceiling(
        self,
        policy: BookingPolicy,
        signals: list[ChainEventSignal],
        when: str,
        receiver: type[ApplyOnce] | type[ApplyOnceLocal],
    ) -> float:
        """A bare workflow per event (1 signal-with-start + 1 activity), driven directly."""
        queue = f"ceiling-{uuid.uuid4().hex[:8]}"
        async with Worker(
            self.temporal,
            task_queue=queue,
            workflows=[receiver],
            activities=[self.applied.apply],
            workflow_runner=workflow_runner(),
        ):
            sink = TemporalSignalSink(self.temporal, policy=policy, task_queue=queue)
            self.applied.expect(len(signals))
            limit = asyncio.Semaphore(64)

            async def one(event: ChainEventSignal) -> None:
                async with limit:
                    await sink.orphan(event)

            began = time.perf_counter()
            await asyncio.gather(*(one(e) for e in signals))
            await asyncio.wait_for(self.applied.done.wait(), self.e2e_seconds)
            return self._rate(
                f"ceiling ({when}): bare workflow, 1 signal + 1"
                f" {'local ' if receiver is ApplyOnceLocal else ''}activity",
                len(signals),
                time.perf_counter() - began,
            )

    async def _live(self, driver: EscrowDriver, count: int) -> None:
        emitter = EventEmitter(driver)
        node = self.node
        urls = [node.ws_url, node.http_url]

        async def send_all(listener: Listener, seen: Callable[[str], float | None]) -> list[float]:
            running = asyncio.create_task(listener.run())
            latencies: list[float] = []
            try:
                await asyncio.sleep(1.0)  # leadership + subscription
                for _ in range(count):
                    data = emitter.payment_calldata("0x" + uuid.uuid4().hex * 2)
                    tx = await driver.transact(driver.accounts[6].address, emitter.address, data)
                    mined = time.perf_counter()  # automine: the receipt exists on return
                    at = seen(tx)
                    deadline = mined + WAIT_SECONDS
                    while at is None and time.perf_counter() < deadline:
                        await asyncio.sleep(0.001)
                        at = seen(tx)
                    if at is None:
                        raise TimeoutError(f"live payment {tx} not seen in {WAIT_SECONDS}s")
                    latencies.append(at - mined)
                    await asyncio.sleep(0.05)
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
            return latencies

        sink = TimedSink()
        listener, close = await self.listener(sink, emitter.address, await driver.head() + 1, urls)
        self.figures.live_signalled = Latency.of_seconds(await send_all(listener, sink.at.get))
        await close()

        start = await driver.head() + 1
        queue = f"live-{uuid.uuid4().hex[:8]}"
        async with Worker(
            self.temporal,
            task_queue=queue,
            workflows=[ApplyOnceLocal],
            activities=[self.applied.apply],
            workflow_runner=workflow_runner(),
        ):
            self.applied.expect(10**9)
            live_sink = TemporalSignalSink(
                self.temporal, policy=default_booking_policy(), task_queue=queue
            )
            listener, close = await self.listener(live_sink, emitter.address, start, urls)
            self.figures.live_applied = Latency.of_seconds(
                await send_all(listener, self.applied.at.get)
            )
            await close()


PONDER_EVENTS_PER_SECOND = 27.0  # issue #5: Ponder on the same one-payment-per-block shape


def add_rows(report: Report, f: ListenerFigures) -> None:
    """The catch-up section of the summary table, and its JSON."""
    ceiling = f.ceiling_local
    report.add(
        "3 catch-up",
        f"{f.events} payments, 1/block: end to end, all applied"
        + ("" if f.applied >= f.events else f" (only {f.applied} in the time limit)"),
        f"{f.end_to_end:.0f} events/s",
        f"{ceiling:.0f}/s bare signal+local activity ({f.ceiling:.0f}/s with a regular one)",
        f"{100 * f.end_to_end / ceiling:.0f}% of ceiling (goal >= 80%); Ponder ~27/s (issue #5):"
        f" x{f.end_to_end / PONDER_EVENTS_PER_SECOND:.1f} (goal >= 2)",
    )
    report.add("3 catch-up", "raw eth_getLogs", f"{f.raw_get_logs:.0f} events/s")
    report.add("3 catch-up", "listener ingest, no-op sink", f"{f.ingest_noop_sink:.0f} events/s")
    report.add(
        "3 catch-up", "listener ingest, no-op workflows", f"{f.ingest_noop_workflow:.0f} events/s"
    )
    for name, lat in (
        ("live mined->signalled (listener only, ws)", f.live_signalled),
        ("live mined->bare local activity (listener+Temporal)", f.live_applied),
    ):
        if lat is not None:
            report.add("3 catch-up", name, lat.text())
    report.data["listener"] = dataclasses.asdict(f)
