"""`python -m bench [--quick] [--n N]`: the whole system on a private embedded stack, measured.

Sections, each beside its ceiling from the same run: lifecycle throughput at N and 2N, event
latency (receipt -> PAID in Postgres) in WebSocket and polling mode at light load and at half
the measured throughput, per-hop timings of that path, catch-up, the API's payment
authorization, the 10x-rate-limit check, and peak RSS of the worker, listener and API.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.api_load import authorization_load, rate_limit_check
from bench.burst import add_burst, burst_lead_seconds, completion_burst
from bench.ceiling import bare_lifecycles, bare_updates, history_shape
from bench.cpu import CpuUse, cpu_seconds, machine_busy, machine_busy_seconds
from bench.fanout import add_creation, add_fanout, bare_creations, creation_latency, stream_fanout
from bench.history import add_history, path_histories
from bench.hops import hop_timings
from bench.listener import ListenerBench, add_rows
from bench.open_bookings import add_open_bookings, open_bookings
from bench.outage import add_outage, listener_outage
from bench.results import Latency, Report, rate
from bench.seen import add_seen, payment_seen_latency
from bench.stack import BenchStack
from bench.steps import step_latencies, steps_text
from bench.traffic import (
    BookingTraffic,
    Lifecycle,
    closed_loop,
    dev_accounts_for,
    light_load,
    open_loop,
)
from bookme.logging import configure_logging
from db.engine import make_engine

# Issue #5's goal for receipt -> PAID at light load.
GOAL_P50_MS = 50.0
GOAL_P99_MS = 250.0
# Issue 17's goals per lifecycle at N: twice the 5.8/s it was filed at, at least half the bare
# workflows' rate, and at most 150 ms of CPU across our processes and the servers.
GOAL_LIFECYCLES_PER_S = 2 * 5.8
GOAL_SHARE_OF_CEILING = 0.5
GOAL_CPU_MS = 150.0


@dataclass(frozen=True, kw_only=True)
class Plan:
    n: int
    concurrency: int = 16
    warmup: int = 5
    light_ws: int = 30
    light_http: int = 10
    loaded: int = 30
    api_requests: int = 40
    lifecycle_ceiling_sample: int = 100
    catch_up_events: int = 5000
    ceiling_sample: int = 150
    e2e_seconds: float = 360.0  # a bound on a stuck catch-up; it runs until all are applied
    live: int = 20
    budget_scale: float = 1.0
    creations: int = 60
    streams: int = 1000
    stream_bookings: int = 20
    only_scale: bool = False  # --scale: the scale sections alone
    payment_seen: int = 30  # bookings paid at 2 confirmations (issue 17's customer latency)
    only_seen: bool = False  # --seen: that section alone
    only_lifecycle: bool = False  # --lifecycle: that section alone (a concurrency sweep)
    burst: int = 1000  # auto-completions released in the same second
    open_bookings: int = 20_000  # measured at a quarter, half and all of it
    outage_payments: int = 200  # paid while the listener is down

    @classmethod
    def quick(cls, n: int) -> Plan:
        return cls(
            n=n, concurrency=8, warmup=2, light_ws=15, light_http=6, loaded=16,
            api_requests=24, lifecycle_ceiling_sample=30, catch_up_events=500,
            ceiling_sample=100, e2e_seconds=180.0,
            live=10, budget_scale=0.5, creations=20, streams=100, stream_bookings=10,
            payment_seen=10,
            burst=40, open_bookings=400, outage_payments=20,
        )  # fmt: skip


def _met(value: float, ceiling: float) -> str:
    met = value >= GOAL_LIFECYCLES_PER_S and value >= GOAL_SHARE_OF_CEILING * ceiling
    return "met" if met else "MISSED"


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


class BenchRun:
    def __init__(self, stack: BenchStack, plan: Plan, report: Report) -> None:
        self.stack = stack
        self.plan = plan
        self.report = report
        self.engine: AsyncEngine = make_engine(stack.database_url, pool_size=4)
        self.traffic = BookingTraffic(stack, self.engine)
        self.temporal: Client | None = None
        self.max_rate = 0.0
        self.light_ws_runs: list[Lifecycle] = []

    @property
    def client(self) -> Client:
        assert self.temporal is not None
        return self.temporal

    async def section(self, name: str, budget: float, body: Callable[[], Awaitable[None]]) -> None:
        """Run one section within `budget` seconds (scaled by the plan); a failure or timeout
        is reported in the table and the run goes on."""
        began = time.perf_counter()
        budget *= self.plan.budget_scale
        print(f"[bench] {name} (budget {budget:.0f}s) ...", flush=True)  # noqa: T201 - progress
        try:
            await asyncio.wait_for(body(), budget)
        except TimeoutError:
            self.report.errors.append(f"{name}: over its {budget:.0f}s budget, cut short")
        except Exception as exc:
            self.report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        self.report.data.setdefault("section_seconds", {})[name] = round(
            time.perf_counter() - began, 1
        )

    async def run(self) -> None:
        self.temporal = await self.stack.temporal()
        await self.traffic.start()
        try:
            if self.plan.only_scale:
                await self.scale()
                return
            if self.plan.only_seen:
                await self.section("payment seen", 240, self.payment_seen)
                return
            if self.plan.only_lifecycle:
                await self.section("lifecycle", 420, self.lifecycle)
                return
            # Budgets keep the default run inside 20 minutes on a loaded 2-core machine.
            await self.section("lifecycle", 420, self.lifecycle)
            await self.section("history", 90, self.history)
            await self.section("latency (WebSocket)", 90, lambda: self.latency("ws"))
            await self.section("hops", 20, self.hops)
            await self.section("payment seen", 240, self.payment_seen)
            await self.section("latency (HTTP polling)", 90, lambda: self.latency("http"))
            await self.section("api", 80, self.api)
            await self.section("rate limit", 60, self.rate_limit)
            await self.section("catch-up", 720, self.catch_up)
            await self.scale()
            self.memory()
            failures = self.traffic.failures
            self.report.data["lifecycle_failures"] = failures
            if failures:
                self.report.errors.append(
                    f"{len(failures)} bookings failed (not counted); first: {failures[0]}"
                )
        finally:
            await self.traffic.close()
            await self.engine.dispose()

    # --- 1. lifecycle throughput ---

    async def lifecycle(self) -> None:
        plan = self.plan
        await closed_loop(self.traffic, plan.warmup, plan.concurrency)
        shapes: dict[int, dict[str, object]] = {}
        rates: dict[int, tuple[float, float]] = {}
        for count in (plan.n, 2 * plan.n):
            before, machine_before = cpu_seconds(self.stack.rss.pids), machine_busy_seconds()
            runs, seconds = await closed_loop(self.traffic, count, plan.concurrency)
            ours_cpu = CpuUse.between(before, cpu_seconds(self.stack.rss.pids), seconds)
            machine = machine_busy(machine_before, machine_busy_seconds(), seconds)
            shape = await history_shape(self.client, f"booking-{runs[0].booking_id}")
            # The ceiling's rate on a sample: each bare workflow costs the shared server too.
            sample = min(count, plan.lifecycle_ceiling_sample)
            ceiling_s, bare_cpu = await bare_lifecycles(
                self.client,
                count=sample,
                concurrency=plan.concurrency,
                shape=shape,
                cpu=lambda: cpu_seconds(self.stack.rss.pids),
            )
            value, ceiling = rate(len(runs), seconds), rate(sample, ceiling_s)
            if count == plan.n:
                self.max_rate = value
            self.stack.rss.sample()
            rates[count] = (value, ceiling)
            shapes[count] = {
                "lifecycles": count,
                "seconds": seconds,
                "per_second": value,
                "ceiling_per_second": ceiling,
                "messages": shape.messages,
                "activities": shape.activities,
                "local_activities": shape.local_activities,
                "paid_latency_under_load": asdict(
                    Latency.of_seconds([r.paid_latency for r in runs])
                ),
                "rss_mb_after": dict(self.stack.rss.peak_mb),
                "cpu_ms_per_lifecycle": ours_cpu.per_item_ms(len(runs)),
                "cores_busy": ours_cpu.busy,
                "machine_cores_busy": machine,
                "bare_cpu_ms_per_workflow": bare_cpu.per_item_ms(sample),
                "bare_cores_busy": bare_cpu.busy,
            }
            self.report.add(
                "1 lifecycle",
                f"N={count}, concurrency {plan.concurrency}",
                f"{value:.2f} lifecycles/s",
                f"{ceiling:.2f}/s bare wf ({shape.text()})",
                f"{100 * value / ceiling:.0f}% of ceiling; goal >= {GOAL_LIFECYCLES_PER_S:.1f}/s"
                f" and >= {100 * GOAL_SHARE_OF_CEILING:.0f}%: {_met(value, ceiling)}",
            )
            # Where the time goes: CPU per lifecycle by process, and how busy the cores were.
            self.report.add(
                "1 lifecycle",
                f"N={count}: CPU ms per lifecycle",
                ours_cpu.text(len(runs)),
                f"bare: {bare_cpu.text(sample)}",
                f"cores busy {100 * ours_cpu.busy:.0f}% (bare {100 * bare_cpu.busy:.0f}%);"
                f" whole machine {100 * machine:.0f}%",
            )
            # Where the wall time goes: each step's share of a lifecycle in the closed loop.
            steps = step_latencies([r.steps() for r in runs])
            shapes[count]["steps_ms"] = {name: asdict(lat) for name, lat in steps.items()}
            self.report.add("1 lifecycle", f"N={count}: step p50 ms", steps_text(steps, "p50"))
            self.report.add("1 lifecycle", f"N={count}: step p99 ms", steps_text(steps, "p99"))
            worker_ms = ours_cpu.per_item_ms(len(runs)).get("worker", 0.0)
            total_ms = ours_cpu.system_ms(len(runs))
            # The bare workflows' worker and client run in the bench process: only the all-in
            # figures (the bench included, on both sides) compare. Once the cores are full,
            # their ratio is the share of the ceiling the CPU allows.
            all_in_ms = sum(ours_cpu.per_item_ms(len(runs)).values())
            bare_all_in_ms = sum(bare_cpu.per_item_ms(sample).values())
            shapes[count] |= {
                "worker_cpu_ms": worker_ms,
                "total_cpu_ms": total_ms,
                "all_in_cpu_ms": all_in_ms,
                "bare_all_in_cpu_ms": bare_all_in_ms,
            }
            self.report.add(
                "1 lifecycle",
                f"N={count}: worker / total CPU ms per lifecycle",
                f"worker {worker_ms:.0f}, total {total_ms:.0f}, with the bench {all_in_ms:.0f}",
                f"bare with the bench (its worker) {bare_all_in_ms:.0f}:"
                f" CPU allows {100 * bare_all_in_ms / all_in_ms:.0f}% of it",
                f"goal total <= {GOAL_CPU_MS:.0f}: {'met' if total_ms <= GOAL_CPU_MS else 'MISSED'}"
                " (all processes but the bench's own)",
            )
        self.report.data["lifecycle"] = shapes
        (ours_n, bare_n), (ours_2n, bare_2n) = rates[plan.n], rates[2 * plan.n]
        self.report.add(
            "1 lifecycle",
            "2N vs N per-booking time",
            f"x{ours_n / ours_2n:.2f}",
            f"x{bare_n / bare_2n:.2f} bare",
            "1.00 = linear; > 1 = slower per booking at 2N",
        )

    # --- 7. history events per path (issue 17) ---

    async def history(self) -> None:
        add_history(self.report, await path_histories(self.stack, self.engine, self.client))

    # --- 2. event latency ---

    async def latency(self, mode: str) -> None:
        plan = self.plan
        if mode == "http":
            await self.stack.start_listener("http")
        try:
            # Not counted: the first payment after a (re)start pays for cold connections.
            await light_load(self.traffic, 1)
            light = await light_load(
                self.traffic, plan.light_ws if mode == "ws" else plan.light_http
            )
            if mode == "ws":
                self.light_ws_runs = light
            per_second = max(0.2, self.max_rate / 2)
            loaded = await open_loop(self.traffic, plan.loaded, per_second)
        finally:
            if mode == "http":
                await self.stack.start_listener("ws")
        light_l = Latency.of_seconds([r.paid_latency for r in light])
        loaded_l = Latency.of_seconds([r.paid_latency for r in loaded])
        label = "WebSocket newHeads" if mode == "ws" else "HTTP polling 1 s"
        met = light_l.p50 <= GOAL_P50_MS and light_l.p99 <= GOAL_P99_MS
        self.report.add(
            "2 latency",
            f"receipt->PAID, {label}, light",
            light_l.text(),
            "",
            f"goal p50<=50 p99<=250: {'met' if met else 'MISSED'}",
        )
        self.report.add(
            "2 latency",
            f"receipt->PAID, {label}, {per_second:.1f}/s (50%)",
            loaded_l.text(),
        )
        self.report.data.setdefault("latency", {})[mode] = {
            "light": asdict(light_l),
            "loaded": asdict(loaded_l),
            "loaded_per_second": per_second,
        }

    # --- 6. slowest hop ---

    async def hops(self) -> None:
        stats = await hop_timings(self.client, self.engine, self.light_ws_runs)
        slowest = max(stats, key=lambda s: s.p50_ms if s.n else -1.0)
        for s in stats:
            self.report.add(
                "6 hops (ws, light)",
                s.name,
                f"p50 {s.p50_ms:.1f} / p95 {s.p95_ms:.1f} ms (n={s.n})",
                "",
                "<- slowest hop" if s is slowest else "",
            )
        self.report.data["hops"] = [asdict(s) for s in stats]
        self.report.data["slowest_hop"] = slowest.name

    # --- 7. what the customer sees at real confirmation depth (issue 17) ---

    async def payment_seen(self) -> None:
        measured = await payment_seen_latency(
            self.stack,
            self.traffic,
            self.engine,
            count=self.plan.payment_seen,
            zero_conf=self.light_ws_runs,
        )
        add_seen(self.report, measured)

    # --- 4. API ---

    async def api(self) -> None:
        data = {}
        for concurrency in (1, 8):
            samples, seconds = await authorization_load(
                self.traffic, count=self.plan.api_requests, concurrency=concurrency
            )
            bare, bare_seconds = await bare_updates(
                self.client, count=self.plan.api_requests, concurrency=concurrency
            )
            ours, floor = Latency.of_seconds(samples), Latency.of_seconds(bare)
            value, ceiling = rate(len(samples), seconds), rate(len(bare), bare_seconds)
            self.report.add(
                "4 api",
                f"payment-authorization, concurrency {concurrency}",
                f"{value:.1f} req/s, p50 {ours.p50:.0f} / p99 {ours.p99:.0f} ms",
                f"{ceiling:.1f}/s, p50 {floor.p50:.0f} / p99 {floor.p99:.0f} ms bare update",
                f"p50 x{ours.p50 / floor.p50:.2f} of bare (goal <= 1.5)",
            )
            data[concurrency] = {
                "per_second": value,
                "latency": asdict(ours),
                "bare_per_second": ceiling,
                "bare_latency": asdict(floor),
            }
        self.report.data["api"] = data

    async def rate_limit(self) -> None:
        check = await rate_limit_check(self.stack, self.traffic)
        self.report.add(
            "4 api",
            f"10x limits ({check.signature_limit}/min sig, {check.create_limit}/min create)",
            f"sig {check.signature_codes}, create {check.create_codes}",
            "",
            f"{check.unexpected} responses other than 2xx/429 (must be 0)",
        )
        self.report.data["rate_limit"] = asdict(check)
        self.report.data["api_status_codes"] = dict(self.traffic.codes)

    # --- 3. catch-up ---

    async def catch_up(self) -> None:
        stack = self.stack
        f = await ListenerBench(
            stack.node, stack.deployment, self.client, stack.create_database
        ).run(self.plan.catch_up_events, self.plan.live)
        add_rows(self.report, f)
        if f.live_applied is not None:
            # The floor under receipt -> PAID: our listener into a bare signal+activity workflow.
            floor = f"mined->bare local activity p50 {f.live_applied.p50:.0f} / p99 {f.live_applied.p99:.0f} ms"
            self.report.rows = [
                dataclasses.replace(r, ceiling=floor)
                if r.section == "2 latency" and r.name.endswith(", light")
                else r
                for r in self.report.rows
            ]

    # --- 6. scale (issue 17) ---

    async def scale(self) -> None:
        await self.section("creation", 120, self.creation)
        await self.section("SSE fan-out", 180, self.fanout)
        # A count of 0 leaves its section out (to rerun one section of a long run).
        if self.plan.open_bookings:
            open_budget = 300 + 0.2 * self.plan.open_bookings
            await self.section("open bookings", open_budget, self.open_bookings)
        if self.plan.burst:
            lead = burst_lead_seconds(self.plan.burst)
            await self.section("auto-complete burst", lead + 480, lambda: self.burst(lead))
        if self.plan.outage_payments:
            # Last: it moves the chain's clock ten minutes ahead of the wall clock.
            await self.section("listener outage", 300 + self.plan.outage_payments, self.outage)

    async def creation(self) -> None:
        for concurrency in (1, 8):
            count = self.plan.creations
            ours = await creation_latency(self.traffic, count=count, concurrency=concurrency)
            bare = await bare_creations(self.client, count=count, concurrency=concurrency)
            add_creation(self.report, ours, bare, concurrency)

    async def fanout(self) -> None:
        measured = await stream_fanout(
            self.stack,
            self.traffic,
            self.engine,
            streams=self.plan.streams,
            bookings=self.plan.stream_bookings,
        )
        add_fanout(self.report, measured)

    async def burst(self, lead: float) -> None:
        measured = await completion_burst(
            self.stack, self.engine, count=self.plan.burst, lead_seconds=lead
        )
        add_burst(self.report, measured)

    async def open_bookings(self) -> None:
        n = self.plan.open_bookings
        measured = await open_bookings(
            self.stack, self.engine, self.client, steps=sorted({n // 4, n // 2, n})
        )
        add_open_bookings(self.report, measured)

    async def outage(self) -> None:
        measured = await listener_outage(
            self.stack, self.traffic, self.engine, count=self.plan.outage_payments
        )
        add_outage(self.report, measured)

    # --- 5. memory ---

    def memory(self) -> None:
        self.stack.rss.sample()
        lifecycle = self.report.data.get("lifecycle", {})
        after = {count: shape["rss_mb_after"] for count, shape in lifecycle.items()}
        for name in ("worker", "listener", "api"):
            peak = self.stack.rss.peak_mb.get(name)
            if peak is None:
                continue
            growth = " -> ".join(f"{mb.get(name, 0):.0f}" for mb in after.values())
            self.report.add(
                "5 memory",
                f"peak RSS {name}",
                f"{peak:.0f} MB",
                "",
                f"after N -> 2N: {growth} MB" if growth else "",
            )
        self.report.data["rss_peak_mb"] = dict(self.stack.rss.peak_mb)


async def main_async(plan: Plan, keep: bool) -> int:
    report = Report(settings=asdict(plan))
    workdir = Path(tempfile.mkdtemp(prefix="bookme-bench-"))
    stack = BenchStack(workdir, accounts=dev_accounts_for(plan.concurrency))
    began = time.perf_counter()
    try:
        print(f"[bench] starting the embedded stack under {workdir} ...", flush=True)  # noqa: T201
        await stack.start()
        await BenchRun(stack, plan, report).run()
    except Exception as exc:
        report.errors.append(f"stack: {type(exc).__name__}: {exc}")
        traceback.print_exc()
    finally:
        await stack.stop()
        if not keep and not report.errors:
            shutil.rmtree(workdir, ignore_errors=True)
    report.data["total_seconds"] = round(time.perf_counter() - began, 1)
    path = report.write()
    print(f"\nbench: {plan.n} / {2 * plan.n} bookings, {report.data['total_seconds']:.0f}s total")  # noqa: T201
    print(report.table())  # noqa: T201 - the one summary table
    print(f"\nwritten: {path} and {path.parent / 'latest.json'}")  # noqa: T201
    if report.errors:
        print(f"logs kept under {workdir}", file=sys.stderr)  # noqa: T201
    return 1 if report.errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~3 min smoke run")
    parser.add_argument("--n", type=int, default=None, help="bookings N (2N runs too)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs and data")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="only the scale sections (creation, SSE fan-out, open bookings, burst, outage)",
    )
    parser.add_argument("--streams", type=int, default=None, help="SSE fan-out: open streams")
    parser.add_argument(
        "--seen",
        action="store_true",
        help="only the payment_seen section (receipt -> seen / PAID at 2 confirmations)",
    )
    parser.add_argument(
        "--lifecycle", action="store_true", help="only the lifecycle section (N and 2N)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="lifecycles in flight at once, ours and the bare ceiling's (default 16)",
    )
    parser.add_argument(
        "--burst", type=int, default=None, help="auto-complete burst: bookings released at once"
    )
    parser.add_argument(
        "--open-bookings", type=int, default=None, help="open bookings waiting at once (N)"
    )
    parser.add_argument(
        "--outage", type=int, default=None, help="payments made while the listener is down"
    )
    args = parser.parse_args(argv)
    n = args.n or (20 if args.quick else 200)
    plan = Plan.quick(n) if args.quick else Plan(n=n)
    plan = dataclasses.replace(plan, only_scale=args.scale, streams=args.streams or plan.streams)
    plan = dataclasses.replace(plan, only_seen=args.seen, only_lifecycle=args.lifecycle)
    if args.concurrency is not None:
        plan = dataclasses.replace(plan, concurrency=args.concurrency)
    plan = dataclasses.replace(
        plan,
        burst=plan.burst if args.burst is None else args.burst,
        open_bookings=plan.open_bookings if args.open_bookings is None else args.open_bookings,
        outage_payments=plan.outage_payments if args.outage is None else args.outage,
    )
    # The in-process catch-up listeners warn once per orphan payment, 10 000 lines per run;
    # the stack's own processes log to files under the work directory.
    configure_logging("ERROR")
    return asyncio.run(main_async(plan, args.keep))
