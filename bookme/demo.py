"""`bookme demo`: five real bookings through the public API and real wallets, checked to the unit.

1. paid, then completed by the workflow's auto-complete timer (chain time moved past release)
2. paid, then completed by the customer's wallet (``completeService``)
3. paid, then cancelled late by the customer: a signed split refund sent from their wallet
4. never paid: cancelled by the payment deadline
5. an orphan payment (a booking id the backend never issued), refunded by the operator

Fresh random customer/provider/inviter wallets each run, so their balances move only by what
these bookings did. Runs against ``make dev`` when its timers are short enough, else starts a
private ``bookme dev`` with short timers and stops it at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx
from eth_account import Account
from jwt.warnings import InsecureKeyLengthWarning
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import mint_token
from bookme.demo_stack import DemoTimers, PrivateStack, StackUrls
from bookme.devchain import anvil_default_accounts
from bookme.settings import Settings
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.deploy import Deployment
from chain.eip712 import (
    BookingAuthorization,
    CancellationAuthorization,
    Eip712Domain,
    chain_booking_id,
    sign_booking_authorization,
)
from chain.escrow import EscrowReader, OnChainBookingStatus, escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender

BUDGET_SECONDS = 300  # the whole demo, stack start excluded
POLL_SECONDS = 1.0
# One listing call for all bookings every 2 s stays well inside the API's per-user limit
# (60 requests a minute by default) beside the demo's other calls.
WATCH_SECONDS = 2.0
BPS = 10_000
ZERO = "0x0000000000000000000000000000000000000000"
CUSTOMER_FUNDS = 1_000 * 10**6
GAS_FUNDS_WEI = 10 * 10**18
# A running stack's timers must let the auto-complete and deadline bookings end in the budget.
MAX_TIMER_SECONDS = 120
FINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


class TimersTooLong(Exception):
    """The running stack's booking timers would outlast the demo's budget."""


class DemoFailure(Exception):
    """A step of one booking went wrong (the message says which)."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """The stack the demo drives."""

    urls: StackUrls
    namespace: str
    private: bool


@dataclass(kw_only=True)
class Run:
    """One booking of the demo and what happened to it."""

    key: str
    title: str
    expected: str
    amount: int
    booking_id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    history: list[str] = field(default_factory=list)
    txs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == self.expected


@dataclass(frozen=True, kw_only=True)
class Party:
    label: str
    address: str


def units(value: int) -> str:
    """Base units as the API's decimal string."""
    return f"{value // 10**6}.{value % 10**6:06d}"


def booking_authorization_from_api(a: dict[str, Any]) -> BookingAuthorization:
    """The payment authorization as the API returns it (camelCase, decimal strings)."""
    return BookingAuthorization(
        booking_id=a["bookingId"],
        customer=a["customer"],
        provider=a["provider"],
        inviter=a["inviter"],
        amount=int(a["amount"]),
        platform_fee_rate=int(a["platformFeeRate"]),
        inviter_fee_rate=int(a["inviterFeeRate"]),
        release_time=int(a["releaseTime"]),
        expiry=int(a["expiry"]),
        nonce=int(a["nonce"]),
    )


def cancellation_authorization_from_api(a: dict[str, Any]) -> CancellationAuthorization:
    """The cancellation authorization as the API returns it."""
    return CancellationAuthorization(
        booking_id=a["bookingId"],
        customer_amount=int(a["customerAmount"]),
        provider_amount=int(a["providerAmount"]),
        platform_amount=int(a["platformAmount"]),
        inviter_amount=int(a["inviterAmount"]),
        reason=a["reason"],
        expiry=int(a["expiry"]),
        nonce=int(a["nonce"]),
    )


def fee(amount: int, bps: int) -> int:
    """``Math.mulDiv(amount, bps, 10_000)`` as the escrow computes it (floor)."""
    return amount * bps // BPS


class Progress:
    """Compact live lines: elapsed time, booking, what changed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()

    def say(self, key: str, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(f"  {elapsed:6.1f}s  {key:<16}{text}\n")
        self.out.flush()


class Demo:
    """The five bookings against one stack."""

    def __init__(
        self,
        *,
        target: Target,
        settings: Settings,
        api: httpx.AsyncClient,
        chain: ChainClient,
        temporal: Client,
        deployment: Deployment,
        progress: Progress,
    ) -> None:
        self.target = target
        self.api = api
        self.chain = chain
        self.temporal = temporal
        self.deployment = deployment
        self.progress = progress
        self.escrow = deployment.escrow
        self.reader = EscrowReader(chain, deployment.escrow, usdc_address=deployment.usdc)
        self.usdc_abi = ContractAbi(load_artifact("MockUSDC").abi)
        self.abi = escrow_abi()
        run_tag = secrets.token_hex(3)
        customer, provider, inviter = (Account.create() for _ in range(3))
        self.customer_address: str = customer.address
        self.provider_address: str = provider.address
        self.inviter_address: str = inviter.address
        self.customer = TransactionSender(
            chain, TransactionKey(customer.key.hex()), chain_id=deployment.chain_id
        )
        secret = settings.jwt_secret.get_secret_value()

        def bearer(sub: str, role: str, wallet: str | None = None) -> dict[str, str]:
            with warnings.catch_warnings():
                # The published dev secret is short on purpose; production refuses it anyway.
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                claims = mint_token(
                    secret,
                    sub=sub,
                    role=role,
                    wallet=wallet,
                    algorithm=settings.jwt_algorithm,
                    audience=settings.jwt_audience or None,
                    issuer=settings.jwt_issuer or None,
                )
            return {"Authorization": f"Bearer {claims}"}

        self.customer_id = f"demo-customer-{run_tag}"
        self.as_customer = bearer(self.customer_id, "customer", customer.address)
        # The marketplace's server credential: it decides each booking's price and parties.
        self.as_marketplace = bearer("demo-marketplace", "service")
        self.provider_id = f"demo-provider-{run_tag}"
        self.parties = (
            Party(label="customer", address=customer.address),
            Party(label="provider", address=provider.address),
            Party(label="inviter", address=inviter.address),
            Party(label="treasury", address=deployment.treasury),
            Party(label="escrow", address=deployment.escrow),
        )
        self.expected_delta: dict[str, int] = {p.address: 0 for p in self.parties}
        self.timers: dict[str, int] = {}

    # --- chain helpers ---

    async def send(self, to: str, data: bytes) -> str:
        sent, receipt = await self.customer.send_and_wait(to=to, data=data)
        if not receipt.succeeded:
            raise DemoFailure(f"transaction {sent.tx_hash} reverted")
        return sent.tx_hash

    async def balances(self) -> dict[str, int]:
        values = await asyncio.gather(
            *(self.reader.usdc_balance_of(p.address) for p in self.parties)
        )
        return {p.address: v for p, v in zip(self.parties, values, strict=True)}

    async def chain_now(self) -> int:
        block = await self.chain.get_block("latest")
        if block is None:
            raise DemoFailure("the chain has no latest block")
        return block.timestamp

    async def fund_customer(self) -> None:
        """Gas by anvil_setBalance, USDC by MockUSDC's open mint, one approval for all bookings."""
        await self.chain.request("anvil_setBalance", [self.customer_address, hex(GAS_FUNDS_WEI)])
        await self.send(
            self.deployment.usdc,
            self.usdc_abi.encode_call("mint", self.customer_address, CUSTOMER_FUNDS),
        )
        await self.send(
            self.deployment.usdc,
            self.usdc_abi.encode_call("approve", self.escrow, CUSTOMER_FUNDS),
        )

    # --- API helpers ---

    async def call(
        self, method: str, path: str, expect: int, *, as_marketplace: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        headers = self.as_marketplace if as_marketplace else self.as_customer
        response = await self.api.request(method, path, headers=headers, **kwargs)
        if response.status_code != expect:
            raise DemoFailure(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body

    async def create(self, run: Run, scheduled_at: datetime, *, inviter: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "service_id": f"demo-{run.key}",
            "provider_id": self.provider_id,
            "customer_id": self.customer_id,
            "customer_wallet": self.customer_address,
            "provider_wallet": self.provider_address,
            "amount": units(run.amount),
            "scheduled_at": scheduled_at.replace(microsecond=0).isoformat(),
        }
        if inviter:
            body["inviter_wallet"] = self.inviter_address
        booking = await self.call("POST", "/bookings", 201, json=body, as_marketplace=True)
        run.booking_id = str(booking["id"])
        run.workflow_id = booking["workflow_id"] or f"booking-{run.booking_id}"
        run.status = booking["status"]
        run.history.append(booking["status"])
        self.progress.say(run.key, f"created {run.booking_id}: {booking['status']}")
        return booking

    async def detail(self, run: Run) -> dict[str, Any]:
        return await self.call("GET", f"/bookings/{run.booking_id}", 200)

    async def watch(self, runs: list[Run], stop: asyncio.Event) -> None:
        """Print each status change of the bookings until all are final or the demo ends."""
        while not stop.is_set():
            try:
                # The customer's own bookings (a fresh customer each run: only these).
                page = await self.call("GET", "/bookings", 200, params={"limit": 100})
            except (httpx.HTTPError, DemoFailure) as exc:
                # One failed read must not end the display; the step's own deadline bounds it.
                self.progress.say("watch", f"(status read failed, retrying: {exc})")
                await asyncio.sleep(WATCH_SECONDS)
                continue
            rows = {row["id"]: row for row in page["items"]}
            for run in runs:
                row = rows.get(run.booking_id or "")
                if row is not None and run.status not in FINAL:
                    self.seen(run, row)
            if all(run.status in FINAL for run in runs):
                return
            await asyncio.sleep(WATCH_SECONDS)

    def seen(self, run: Run, row: dict[str, Any]) -> None:
        """Record what one read of the booking's row shows."""
        if row["status"] != run.status:
            self.progress.say(run.key, f"{run.status} -> {row['status']}")
            run.status = row["status"]
            run.history.append(row["status"])
        for name, column in (
            ("completion", "completion_tx_hash"),
            ("cancellation", "cancellation_tx_hash"),
        ):
            if row.get(column) and name not in run.txs:
                run.txs[name] = row[column]

    async def reach(self, run: Run, status: str, within: float) -> None:
        deadline = time.monotonic() + within
        while run.status != status:
            if run.status in FINAL or time.monotonic() > deadline:
                raise DemoFailure(f"expected {status}, still {run.status} after {within:.0f}s")
            await asyncio.sleep(0.2)

    async def report(self, run: Run, tx_hash: str, kind: str) -> None:
        await self.call(
            "POST",
            f"/bookings/{run.booking_id}/transactions",
            202,
            json={"tx_hash": tx_hash, "kind": kind},
        )

    async def pay(self, run: Run) -> BookingAuthorization:
        """The customer's wallet pays what the API authorized, and says so."""
        signed = await self.call("POST", f"/bookings/{run.booking_id}/payment-authorization", 200)
        auth = booking_authorization_from_api(signed["authorization"])
        tx = await self.send(
            self.escrow,
            self.abi.encode_call(
                "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed["signature"][2:])
            ),
        )
        run.txs["payment"] = tx
        self.progress.say(run.key, f"paid from the customer wallet: {tx}")
        await self.report(run, tx, "payment")
        return auth

    def expect_completion(self, auth: BookingAuthorization) -> None:
        platform = fee(auth.amount, auth.platform_fee_rate)
        inviter = fee(auth.amount, auth.inviter_fee_rate)
        self.expected_delta[auth.customer] -= auth.amount
        self.expected_delta[auth.provider] += auth.amount - platform - inviter
        self.expected_delta[self.deployment.treasury] += platform
        if inviter:
            self.expected_delta[auth.inviter] += inviter

    # --- the five bookings ---

    async def auto_complete(self, run: Run) -> None:
        await self.reach(run, "PENDING_PAYMENT", 30)
        auth = await self.pay(run)
        await self.reach(run, "PAID", 60)
        now = await self.chain_now()
        if now < auth.release_time:
            skip = auth.release_time - now + 1
            await self.chain.request("evm_increaseTime", [skip])
            await self.chain.request("evm_mine", [])
            self.progress.say(
                run.key, f"chain time +{skip}s (evm_increaseTime + evm_mine): past release time"
            )
        self.expect_completion(auth)
        await self.reach(run, "COMPLETED", self.timers["auto_complete_delay"] + 90)
        events = await self.call("GET", f"/bookings/{run.booking_id}/events", 200)
        if not any(e["kind"] == "auto_complete_sent" for e in events["items"]):
            raise DemoFailure("completed, but not by the auto-complete timer")
        run.note = "operator's auto-complete"

    async def customer_completes(self, run: Run) -> None:
        await self.reach(run, "PENDING_PAYMENT", 30)
        auth = await self.pay(run)
        await self.reach(run, "PAID", 60)
        tx = await self.send(
            self.escrow,
            self.abi.encode_call("completeService", bytes.fromhex(auth.booking_id[2:])),
        )
        run.txs["completion"] = tx
        self.progress.say(run.key, f"customer wallet called completeService: {tx}")
        self.expect_completion(auth)
        await self.report(run, tx, "completion")
        await self.reach(run, "COMPLETED", 60)

    async def customer_cancels(self, run: Run) -> None:
        await self.reach(run, "PENDING_PAYMENT", 30)
        await self.pay(run)
        await self.reach(run, "PAID", 60)
        body = await self.call(
            "POST",
            f"/bookings/{run.booking_id}/cancellation",
            200,
            json={"reason": "demo: customer cancels within the late window"},
        )
        auth = cancellation_authorization_from_api(body["authorization"])
        if not (auth.customer_amount and auth.provider_amount):
            raise DemoFailure(f"expected a split refund, got {body['authorization']}")
        self.progress.say(
            run.key,
            f"split signed: customer {auth.customer_amount}, provider {auth.provider_amount}",
        )
        tx = await self.send(
            self.escrow,
            self.abi.encode_call(
                "cancelBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
            ),
        )
        run.txs["cancellation"] = tx
        self.progress.say(run.key, f"customer wallet called cancelBooking: {tx}")
        self.expected_delta[self.customer_address] -= run.amount - auth.customer_amount
        self.expected_delta[self.provider_address] += auth.provider_amount
        self.expected_delta[self.deployment.treasury] += auth.platform_amount
        self.expected_delta[self.inviter_address] += auth.inviter_amount
        await self.report(run, tx, "cancellation")
        await self.reach(run, "CANCELLED", 60)

    async def left_unpaid(self, run: Run) -> None:
        await self.reach(run, "CANCELLED", self.timers["payment_deadline"] + 60)
        row = await self.detail(run)
        run.note = row.get("status_reason") or ""

    async def orphan(self, run: Run) -> None:
        """Pay a booking id the backend never issued, with a valid signature from the signer."""
        signer = anvil_default_accounts()[1]
        if signer.address != self.deployment.signer:
            raise DemoFailure("the escrow's signer is not anvil's account #1: not a local chain")
        policy = await self.reader.fee_policy()
        now = await self.chain_now()
        auth = BookingAuthorization(
            booking_id=chain_booking_id(uuid.uuid4()),
            customer=self.customer_address,
            provider=self.provider_address,
            inviter=ZERO,
            amount=run.amount,
            platform_fee_rate=policy.platform_fee_bps,
            inviter_fee_rate=0,
            release_time=now + 3600,
            expiry=now + 600,
            nonce=secrets.randbits(128),
        )
        domain = Eip712Domain(chain_id=self.deployment.chain_id, verifying_contract=self.escrow)
        signed = sign_booking_authorization(domain, auth, signer.private_key)
        run.workflow_id = f"orphan-{auth.booking_id.lower()}"
        run.booking_id = auth.booking_id
        tx = await self.send(
            self.escrow,
            self.abi.encode_call(
                "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed.signature[2:])
            ),
        )
        run.txs["payment"] = tx
        run.status = "PAID_UNKNOWN"
        run.history.append(run.status)
        self.progress.say(run.key, f"paid an id the backend never issued: {tx}")
        handle = self.temporal.get_workflow_handle(run.workflow_id)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            on_chain = (await self.reader.get_booking(auth.booking_id)).status
            workflow = None
            try:
                workflow = (await handle.describe()).status
            except RPCError:  # not started yet: the listener has not seen the payment
                workflow = None
            state = {
                OnChainBookingStatus.PAID: "PAID_UNKNOWN",
                OnChainBookingStatus.CANCELLED: "REFUNDED",
            }.get(on_chain, on_chain.name)
            if workflow is not None and state == "PAID_UNKNOWN":
                state = "ORPHAN_WORKFLOW"
            view: dict[str, object] = {}
            if state == "REFUNDED" and workflow is not None:
                # The workflow stays open for the finality period: ask it, not its status.
                answer = await handle.query("status")
                view = answer if isinstance(answer, dict) else {}
            if state == "REFUNDED" and view.get("refunded") is not True:
                state = "REFUND_MINED"
            if state != run.status:
                self.progress.say(run.key, f"{run.status} -> {state}")
                run.status = state
                run.history.append(state)
            if state == "REFUNDED":
                refund = view.get("refund_tx_hash")
                if isinstance(refund, str) and refund:
                    run.txs["refund"] = refund
                return
            await asyncio.sleep(POLL_SECONDS)
        raise DemoFailure(f"not refunded in 120s (last state {run.status})")

    # --- the whole run ---

    async def read_timers(self, run: Run) -> None:
        """The running stack's timers, as the first booking's live view shows them."""
        row = await self.detail(run)
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
        runs = [
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
        ]  # fmt: skip
        now = datetime.now(UTC)
        # The first booking tells the timers in force before anything is paid.
        await self.create(runs[0], now + timedelta(seconds=20), inviter=True)
        await self.read_timers(runs[0])
        too_long = {k: v for k, v in self.timers.items() if v > MAX_TIMER_SECONDS}
        if too_long:
            await self.call(
                "POST",
                f"/bookings/{runs[0].booking_id}/cancellation",
                200,
                json={"reason": "demo: timers too long for this stack"},
            )
            raise TimersTooLong(", ".join(f"{k} {v}s" for k, v in too_long.items()))
        self.progress.out.write(
            "  timers in force (from booking 1's live view): "
            f"auto-complete delay {self.timers['auto_complete_delay']}s after the appointment "
            f"(+15s margin), payment deadline {self.timers['payment_deadline']}s\n"
        )
        later = now + timedelta(hours=1)  # inside the 24 h late-cancellation window
        for run in runs[1:4]:
            await self.create(run, later, inviter=False)
        stop = asyncio.Event()
        watchers = [asyncio.create_task(self.watch(runs[:4], stop))]
        steps: list[Callable[[Run], Awaitable[None]]] = [
            self.auto_complete,
            self.customer_completes,
            self.customer_cancels,
            self.left_unpaid,
            self.orphan,
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
        return runs


def render(
    target: Target,
    runs: list[Run],
    parties: tuple[Party, ...],
    before: dict[str, int],
    after: dict[str, int],
    expected: dict[str, int],
) -> tuple[str, bool]:
    """The final tables and whether everything matched."""
    ui = target.urls.temporal_ui_url
    lines = ["", "Bookings"]
    head = f"  {'booking':<16}{'expected':<11}{'final':<18}{'ok':<4}path"
    lines.append(head)
    for r in runs:
        lines.append(
            f"  {r.key:<16}{r.expected:<11}{(r.status or '-'):<18}{'ok' if r.ok else 'BAD':<4}"
            + " > ".join(r.history)
        )
        if r.error:
            lines.append(f"      error: {r.error}")
        if r.note:
            lines.append(f"      note: {r.note}")
        for name, tx in r.txs.items():
            lines.append(f"      {name + ' tx':<16}{tx}")
        if r.workflow_id:
            lines.append(
                f"      {'Temporal UI':<16}{ui}/namespaces/{target.namespace}/workflows/"
                f"{r.workflow_id}"
            )
    lines += ["", "USDC balances (base units, 6 decimals)"]
    lines.append(
        f"  {'party':<9}{'address':<44}{'before':>14}{'after':>14}{'change':>13}"
        f"{'expected':>13}  ok"
    )
    balances_ok = True
    for p in parties:
        change = after[p.address] - before[p.address]
        ok = change == expected[p.address]
        balances_ok &= ok
        lines.append(
            f"  {p.label:<9}{p.address:<44}{before[p.address]:>14}{after[p.address]:>14}"
            f"{change:>+13}{expected[p.address]:>+13}  {'ok' if ok else 'BAD'}"
        )
    all_ok = balances_ok and all(r.ok for r in runs)
    lines += ["", "DEMO PASSED" if all_ok else "DEMO FAILED"]
    return "\n".join(lines), all_ok


async def drive(target: Target, settings: Settings, out: TextIO) -> int:
    """Run the five bookings on ``target``; 0 when all end right and balances are exact."""
    deployment = Deployment.read_json(target.urls.deployment_file)
    temporal = await Client.connect(target.urls.temporal_address, namespace=target.namespace)
    async with (
        httpx.AsyncClient(base_url=target.urls.api_url, timeout=15.0) as api,
        ChainClient([target.urls.rpc_url], expected_chain_id=deployment.chain_id) as chain,
    ):
        progress = Progress(out)
        demo = Demo(
            target=target,
            settings=settings,
            api=api,
            chain=chain,
            temporal=temporal,
            deployment=deployment,
            progress=progress,
        )
        out.write(
            f"Demo wallets (fresh this run): customer {demo.customer_address}, "
            f"provider {demo.provider_address}, inviter {demo.inviter_address}\n"
        )
        await demo.fund_customer()
        progress.say("setup", f"customer funded with {CUSTOMER_FUNDS} units, escrow approved")
        before = await demo.balances()
        async with asyncio.timeout(BUDGET_SECONDS):
            runs = await demo.run()
        after = await demo.balances()
        table, ok = render(target, runs, demo.parties, before, after, demo.expected_delta)
        out.write(table + "\n")
        out.write(f"Demo took {time.monotonic() - progress.started:.1f}s\n")
        return 0 if ok else 1


def running_target(settings: Settings) -> Target:
    """Where `make dev` answers with this checkout's settings."""
    rpc = next((u for u in settings.rpc_urls if u.startswith("http")), None)
    return Target(
        urls=StackUrls(
            api_url=f"http://{settings.api_host}:{settings.api_port}",
            rpc_url=rpc or f"http://127.0.0.1:{settings.dev_anvil_port}",
            temporal_address=settings.temporal_address or f"127.0.0.1:{settings.dev_temporal_port}",
            temporal_ui_url=f"http://127.0.0.1:{settings.dev_temporal_ui_port}",
            deployment_file=settings.deployment_file,
        ),
        namespace=settings.temporal_namespace,
        private=False,
    )


def api_answers(api_url: str) -> bool:
    try:
        httpx.get(f"{api_url}/health", timeout=3.0)
    except httpx.HTTPError:
        return False
    return True


SHORT_TIMERS_DEV = (
    "BOOKME_AUTO_COMPLETE_DELAY_SECONDS=20 BOOKME_PAYMENT_DEADLINE_SECONDS=40 make dev"
)
HOW_TO_START = (
    "Start the stack in another terminal with demo timers (wait for 'BookMe dev stack ready'):\n"
    f"  {SHORT_TIMERS_DEV}\n"
    "then run `make demo` again (or `make demo` alone starts a private stack)."
)


def run_demo(settings: Settings, *, stack: str, keep: bool, out: TextIO) -> int:
    """`bookme demo`: pick the stack (running or private), drive it, always clean up."""
    # The progress lines are the output; per-transaction info logs would drown them.
    root = logging.getLogger()
    root.setLevel(max(logging.WARNING, root.level))
    # SIGTERM unwinds like Ctrl-C, so a private stack is stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run_demo(settings, stack=stack, keep=keep, out=out)
    except KeyboardInterrupt:
        out.write("Demo interrupted.\n")
        return 130


def _run_demo(settings: Settings, *, stack: str, keep: bool, out: TextIO) -> int:
    if stack in ("auto", "running"):
        target = running_target(settings)
        if api_answers(target.urls.api_url):
            out.write(f"Using the running stack at {target.urls.api_url}\n")
            try:
                return asyncio.run(drive(target, settings, out))
            except TimersTooLong as exc:
                out.write(
                    f"The running stack's timers are too long for a {BUDGET_SECONDS}s demo "
                    f"({exc}); its first booking was cancelled unpaid.\n"
                    "To run the demo on your own `make dev`, restart it as\n"
                    f"  {SHORT_TIMERS_DEV}\n"
                )
                if stack == "running":
                    out.write(HOW_TO_START + "\n")
                    return 2
        else:
            out.write(f"Nothing answers at {target.urls.api_url} (no `make dev` running).\n")
            if stack == "running":
                out.write(HOW_TO_START + "\n")
                return 2
    timers = DemoTimers()
    private = PrivateStack(default_data_dir(settings), timers)
    out.write(
        "Starting a private dev stack (fresh data, free ports) with short timers: "
        f"BOOKME_AUTO_COMPLETE_DELAY_SECONDS={timers.auto_complete_delay_seconds} "
        f"BOOKME_PAYMENT_DEADLINE_SECONDS={timers.payment_deadline_seconds}; "
        f"its log: {private.log_file}\n"
    )
    out.flush()
    started = time.monotonic()
    code = 1
    try:
        urls = private.start()
        out.write(
            f"Private stack ready in {time.monotonic() - started:.1f}s: API {urls.api_url}, "
            f"Temporal UI {urls.temporal_ui_url}, RPC {urls.rpc_url}\n"
        )
        target = Target(urls=urls, namespace=settings.temporal_namespace, private=True)
        code = asyncio.run(drive(target, settings, out))
        if not keep:
            out.write(
                "The private stack stops now, and its Temporal UI links with it; "
                "`.venv/bin/python -m bookme demo --keep` keeps it running until Ctrl-C.\n"
            )
        if keep:
            out.write("Private stack kept running for the Temporal UI links; Ctrl-C stops it.\n")
            out.flush()
            _wait_for_interrupt()
        return code
    finally:
        private.stop()
        if code == 0:
            private.remove_data()
            out.write("Private stack stopped and its data removed.\n")
        else:
            out.write(f"Private stack stopped; its data and logs stay in {private.data_dir}\n")


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return


def default_data_dir(settings: Settings) -> Path:
    """One dir per run, so two demos at once never share (or delete) each other's state."""
    return settings.data_dir.resolve() / "demo-stacks" / str(os.getpid())
