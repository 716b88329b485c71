"""The six bookings of `bookme demo`, each driven through the API and the customer's wallet.

Bookings 1-4 are created by the marketplace and watched through one listing poll; booking 5
is paid straight on chain under an id the backend never issued, and followed through Temporal
and the escrow; booking 6 is paid with one signature by a wallet holding no ETH, and followed
with that customer's own reads. Each flow records its outcome on its `Run` and the balances it should move.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TextIO

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bookme.demo.api_client import DemoApi
from bookme.demo.errors import DemoFailure, TimersTooLong
from bookme.demo.expected import ExpectedBalances
from bookme.demo.relayed import pay_relayed
from bookme.demo.render import Progress, render
from bookme.demo.runs import FINAL, Run
from bookme.demo.target import BUDGET_SECONDS, MAX_TIMER_SECONDS, Target
from bookme.demo.wallets import CUSTOMER_FUNDS, Wallets
from bookme.devchain import anvil_default_accounts
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import Deployment
from chain.eip712 import (
    ZERO_ADDRESS,
    BookingAuthorization,
    CancellationAuthorization,
    Eip712Domain,
    chain_booking_id,
)
from chain.escrow import OnChainBookingStatus
from chain.signing import sign_booking_authorization

POLL_SECONDS = 1.0
ORPHAN_REFUND_SECONDS = 120
# What the orphan's escrow status means for the demo (others show by their on-chain name).
ORPHAN_STATES = {
    OnChainBookingStatus.PAID: "PAID_UNKNOWN",
    OnChainBookingStatus.CANCELLED: "REFUNDED",
}


def plan() -> list[Run]:
    """The six bookings, in the order of the module docstring of `bookme.demo`."""
    return [
        Run(key="1 auto-complete", title="paid, auto-completed", expected="COMPLETED",
            amount=25_000_003),
        Run(key="2 customer-done", title="paid, customer completes", expected="COMPLETED",
            amount=40_000_001),
        Run(key="3 late-cancel", title="paid, late cancel (split)", expected="CANCELLED",
            amount=30_000_001),
        Run(key="4 unpaid", title="never paid (deadline)", expected="CANCELLED",
            amount=10_000_000),
        Run(key="5 orphan", title="orphan payment refunded", expected="REFUNDED",
            amount=12_345_678),
        Run(key="6 relayed", title="one signature, no ETH", expected="COMPLETED",
            amount=20_000_007),
    ]  # fmt: skip


async def reach(run: Run, status: str, within: float) -> None:
    """Wait until the watch has seen ``status``; a final other status or the deadline fails."""
    deadline = time.monotonic() + within
    while run.status != status:
        if run.status in FINAL or time.monotonic() > deadline:
            raise DemoFailure(f"expected {status}, still {run.status} after {within:.0f}s")
        await asyncio.sleep(0.2)


class Demo:
    """The six bookings against one stack."""

    def __init__(
        self, *, api: DemoApi, wallets: Wallets, temporal: Client, progress: Progress
    ) -> None:
        self.api = api
        self.wallets = wallets
        self.temporal = temporal
        self.progress = progress
        self.expected = ExpectedBalances(wallets.parties, treasury=wallets.deployment.treasury)
        self.timers: dict[str, int] = {}

    async def pay(self, run: Run) -> BookingAuthorization:
        """The customer's wallet pays what the API authorized, and says so."""
        signed = await self.api.call(
            "POST", f"/bookings/{run.booking_id}/payment-authorization", 200
        )
        auth = BookingAuthorization.from_message(signed["authorization"])
        tx = await self.wallets.call_escrow(
            "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed["signature"][2:])
        )
        run.txs["payment"] = tx
        self.progress.say(run.key, f"paid from the customer wallet: {tx}")
        await self.api.report(run, tx, "payment")
        return auth

    # --- the six bookings ---

    async def auto_complete(self, run: Run) -> None:
        await reach(run, "PENDING_PAYMENT", 30)
        auth = await self.pay(run)
        await reach(run, "PAID", 60)
        now = await self.wallets.chain_now()
        if now < auth.release_time:
            skip = auth.release_time - now + 1
            await self.wallets.skip_chain_time(skip)
            self.progress.say(
                run.key, f"chain time +{skip}s (evm_increaseTime + evm_mine): past release time"
            )
        self.expected.completion(auth)
        await reach(run, "COMPLETED", self.timers["auto_complete_delay"] + 90)
        if not any(e["kind"] == "auto_complete_sent" for e in await self.api.events(run)):
            raise DemoFailure("completed, but not by the auto-complete timer")
        run.note = "operator's auto-complete"

    async def customer_completes(self, run: Run) -> None:
        await reach(run, "PENDING_PAYMENT", 30)
        auth = await self.pay(run)
        await reach(run, "PAID", 60)
        tx = await self.wallets.call_escrow("completeService", bytes.fromhex(auth.booking_id[2:]))
        run.txs["completion"] = tx
        self.progress.say(run.key, f"customer wallet called completeService: {tx}")
        self.expected.completion(auth)
        await self.api.report(run, tx, "completion")
        await reach(run, "COMPLETED", 60)

    async def customer_cancels(self, run: Run) -> None:
        await reach(run, "PENDING_PAYMENT", 30)
        await self.pay(run)
        await reach(run, "PAID", 60)
        body = await self.api.cancel(run, "demo: customer cancels within the late window")
        auth = CancellationAuthorization.from_message(body["authorization"])
        if not (auth.customer_amount and auth.provider_amount):
            raise DemoFailure(f"expected a split refund, got {body['authorization']}")
        self.progress.say(
            run.key,
            f"split signed: customer {auth.customer_amount}, provider {auth.provider_amount}",
        )
        tx = await self.wallets.call_escrow(
            "cancelBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
        )
        run.txs["cancellation"] = tx
        self.progress.say(run.key, f"customer wallet called cancelBooking: {tx}")
        self.expected.cancellation(
            auth,
            paid=run.amount,
            customer=self.wallets.customer_address,
            provider=self.wallets.provider_address,
            inviter=self.wallets.inviter_address,
        )
        await self.api.report(run, tx, "cancellation")
        await reach(run, "CANCELLED", 60)

    async def left_unpaid(self, run: Run) -> None:
        await reach(run, "CANCELLED", self.timers["payment_deadline"] + 60)
        row = await self.api.detail(run)
        run.note = row.get("status_reason") or ""

    async def orphan(self, run: Run) -> None:
        """Pay a booking id the backend never issued, with a valid signature from the signer."""
        auth = await self._pay_orphan(run)
        handle = self.temporal.get_workflow_handle(f"orphan-{auth.booking_id.lower()}")
        deadline = time.monotonic() + ORPHAN_REFUND_SECONDS
        while time.monotonic() < deadline:
            state, view = await self._orphan_state(handle, auth.booking_id)
            if state != run.status:
                self.progress.say(run.key, f"{run.status} -> {state}")
                run.moved_to(state)
            if state == "REFUNDED":
                refund = view.get("refund_tx_hash")
                if isinstance(refund, str) and refund:
                    run.txs["refund"] = refund
                return
            await asyncio.sleep(POLL_SECONDS)
        raise DemoFailure(f"not refunded in {ORPHAN_REFUND_SECONDS}s (last state {run.status})")

    async def _pay_orphan(self, run: Run) -> BookingAuthorization:
        """Sign with anvil's published signer key and pay from the customer's wallet."""
        signer = anvil_default_accounts()[1]
        deployment = self.wallets.deployment
        if signer.address != deployment.signer:
            raise DemoFailure("the escrow's signer is not anvil's account #1: not a local chain")
        policy = await self.wallets.reader.fee_policy()
        now = await self.wallets.chain_now()
        auth = BookingAuthorization(
            booking_id=chain_booking_id(uuid.uuid4()),
            customer=self.wallets.customer_address,
            provider=self.wallets.provider_address,
            inviter=ZERO_ADDRESS,
            amount=run.amount,
            platform_fee_rate=policy.platform_fee_bps,
            inviter_fee_rate=0,
            release_time=now + 3600,
            expiry=now + 600,
            nonce=secrets.randbits(128),
        )
        domain = Eip712Domain(chain_id=deployment.chain_id, verifying_contract=deployment.escrow)
        signed = sign_booking_authorization(domain, auth, signer.private_key)
        run.workflow_id = f"orphan-{auth.booking_id.lower()}"
        run.booking_id = auth.booking_id
        tx = await self.wallets.call_escrow(
            "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed.signature[2:])
        )
        run.txs["payment"] = tx
        run.moved_to("PAID_UNKNOWN")
        self.progress.say(run.key, f"paid an id the backend never issued: {tx}")
        return auth

    async def _orphan_state(
        self, handle: WorkflowHandle[object, object], booking_id: str
    ) -> tuple[str, dict[str, object]]:
        """Where the orphan stands (escrow and workflow together), and the workflow's view."""
        on_chain = (await self.wallets.reader.get_booking(booking_id)).status
        try:
            workflow = (await handle.describe()).status
        except RPCError:  # not started yet: the listener has not seen the payment
            workflow = None
        state = ORPHAN_STATES.get(on_chain, on_chain.name)
        if workflow is not None and state == "PAID_UNKNOWN":
            state = "ORPHAN_WORKFLOW"
        view: dict[str, object] = {}
        if state == "REFUNDED" and workflow is not None:
            # The workflow stays open for the finality period: ask it, not its status.
            answer = await handle.query("status")
            view = answer if isinstance(answer, dict) else {}
        if state == "REFUNDED" and view.get("refunded") is not True:
            state = "REFUND_MINED"
        return state, view

    async def relayed(self, run: Run) -> None:
        """A wallet with USDC and no ETH signs once; the platform sends and pays the gas."""
        w = self.wallets
        self.progress.say(run.key, f"gasless wallet holds {await w.eth_of_gasless()} wei ETH")
        assert run.booking_id is not None
        paid = await pay_relayed(
            self.api.api, run.booking_id, headers=self.api.as_gasless, private_key=w.gasless_key
        )
        run.txs["relayed payment"] = paid.tx_hash
        self.progress.say(
            run.key,
            f"signed once, relayed by the platform: {paid.tx_hash} "
            f"({paid.gas_used} gas, {paid.gas_cost_wei} wei paid by the operator)",
        )
        self.expected.completion(BookingAuthorization.from_message(paid.authorization))
        deadline = time.monotonic() + self.timers["auto_complete_delay"] + 90
        while run.status != "COMPLETED":  # not in the customer's listing: its own reads
            row = await self.api.call("GET", f"/bookings/{run.booking_id}", 200, as_gasless=True)
            if row["status"] != run.status:
                self.progress.say(run.key, f"{run.status} -> {row['status']}")
                run.moved_to(row["status"])
            if run.status in FINAL - {"COMPLETED"} or time.monotonic() > deadline:
                raise DemoFailure(f"expected COMPLETED, still {run.status}")
            await asyncio.sleep(POLL_SECONDS)
        eth = await w.eth_of_gasless()
        self.progress.say(run.key, f"gasless wallet holds {eth} wei ETH")
        if eth != 0:
            raise DemoFailure(f"the gasless wallet holds {eth} wei ETH")
        run.note = f"paid by a wallet with 0 ETH; the operator paid {paid.gas_cost_wei} wei gas"

    # --- the whole run ---

    async def read_timers(self, run: Run) -> None:
        """The running stack's timers, as the first booking's live view shows them."""
        row = await self.api.detail(run)
        live = row.get("live")
        if not live:
            raise DemoFailure("the booking's workflow did not answer (no live view)")
        scheduled = datetime.fromisoformat(row["scheduled_at"])
        created = datetime.fromisoformat(row["created_at"])
        self.timers = {
            "auto_complete_delay": round(
                (datetime.fromisoformat(live["release_at"]) - scheduled).total_seconds()
            ),
            "payment_deadline": round(
                (datetime.fromisoformat(live["payment_deadline"]) - created).total_seconds()
            ),
        }

    async def run(self) -> list[Run]:
        """Create the bookings, then drive all six at once; each records its own outcome."""
        runs = plan()
        w = self.wallets
        now = datetime.now(UTC)
        # The first booking tells the timers in force before anything is paid.
        await self.api.create(
            runs[0],
            now + timedelta(seconds=20),
            customer=w.customer_address,
            provider=w.provider_address,
            inviter=w.inviter_address,
        )
        await self.read_timers(runs[0])
        await self._refuse_long_timers(runs[0])
        self.progress.out.write(
            "  timers in force (from booking 1's live view): "
            f"auto-complete delay {self.timers['auto_complete_delay']}s after the appointment "
            f"(+15s margin), payment deadline {self.timers['payment_deadline']}s\n"
        )
        later = now + timedelta(hours=1)  # inside the 24 h late-cancellation window
        for run in runs[1:4]:
            await self.api.create(
                run, later, customer=w.customer_address, provider=w.provider_address, inviter=None
            )
        # Completed by the operator's auto-complete, as booking 1: the gasless wallet sends nothing.
        await self.api.create(
            runs[5],
            datetime.now(UTC) + timedelta(seconds=20),
            customer=w.gasless_address,
            provider=w.provider_address,
            inviter=None,
        )
        await self._drive_all(runs)
        return runs

    async def _refuse_long_timers(self, first: Run) -> None:
        """Timers the budget cannot wait out: cancel the first booking (unpaid) and stop."""
        too_long = {k: v for k, v in self.timers.items() if v > MAX_TIMER_SECONDS}
        if too_long:
            await self.api.cancel(first, "demo: timers too long for this stack")
            raise TimersTooLong(", ".join(f"{k} {v}s" for k, v in too_long.items()))

    async def _drive_all(self, runs: list[Run]) -> None:
        """Each booking's flow at once, under one watch; a failure stays with its booking."""
        stop = asyncio.Event()
        watchers = [asyncio.create_task(self.api.watch(runs[:4], stop))]
        steps: list[Callable[[Run], Awaitable[None]]] = [
            self.auto_complete,
            self.customer_completes,
            self.customer_cancels,
            self.left_unpaid,
            self.orphan,
            self.relayed,
        ]

        async def guarded(step: Callable[[Run], Awaitable[None]], run: Run) -> None:
            try:
                await step(run)
            except Exception as exc:  # recorded per booking and reported in the table
                run.error = f"{type(exc).__name__}: {exc}"
                self.progress.say(run.key, f"FAILED: {run.error}")

        try:
            await asyncio.gather(*(guarded(s, r) for s, r in zip(steps, runs, strict=True)))
        finally:
            stop.set()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)


async def drive(target: Target, settings: Settings, out: TextIO) -> int:
    """Run the six bookings on ``target``; 0 when all end right and balances are exact."""
    deployment = Deployment.read_json(target.urls.deployment_file)
    temporal = await Client.connect(target.urls.temporal_address, namespace=target.namespace)
    async with (
        httpx.AsyncClient(base_url=target.urls.api_url, timeout=15.0) as http,
        ChainClient([target.urls.rpc_url], expected_chain_id=deployment.chain_id) as chain,
    ):
        progress = Progress(out)
        wallets = Wallets(chain, deployment)
        api = DemoApi(
            http,
            settings,
            customer_wallet=wallets.customer_address,
            gasless_wallet=wallets.gasless_address,
            progress=progress,
        )
        demo = Demo(api=api, wallets=wallets, temporal=temporal, progress=progress)
        out.write(
            f"Demo wallets (fresh this run): customer {wallets.customer_address}, "
            f"provider {wallets.provider_address}, inviter {wallets.inviter_address}, "
            f"gasless customer {wallets.gasless_address}\n"
        )
        await wallets.fund_customer()
        progress.say("setup", f"customer funded with {CUSTOMER_FUNDS} units, escrow approved")
        before = await wallets.balances()
        async with asyncio.timeout(BUDGET_SECONDS):
            runs = await demo.run()
        after = await wallets.balances()
        table, ok = render(target, runs, wallets.parties, before, after, demo.expected.delta)
        out.write(table + "\n")
        out.write(f"Demo took {time.monotonic() - progress.started:.1f}s\n")
        return 0 if ok else 1
