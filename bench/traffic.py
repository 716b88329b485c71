"""Real bookings through the API, paid and completed by real (anvil-unlocked) wallets."""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import mint_token
from bench.stack import BenchStack
from bookme.demo import booking_authorization_from_api
from bookme.devchain import ROLE_ACCOUNTS
from bookme.embedded.anvil import ANVIL_DEFAULT_ACCOUNTS
from bookme.settings import Settings
from chain.escrow import escrow_abi
from tests.listener.driver import EscrowDriver

AMOUNT = "1.000000"  # one USDC per booking: the funded wallets last for many thousands
PROVIDER_WALLET = "0x000000000000000000000000000000000000b0b0"
CREATE_ATTEMPTS = 5
FAILED = frozenset({"CANCELLED", "FAILED"})
# A booking counts as paid once its row shows PAID or any status only a paid booking reaches.
PAID_OR_LATER = frozenset({"PAID", "PENDING_COMPLETION", "COMPLETED"})


# Customer wallets per lifecycle in flight. Round robin hands a wallet out again only after
# all the others, so two lifecycles in flight share one (and its send lock, below) only when
# one of them outlasts about twice the average.
WALLETS_PER_LIFECYCLE = 2


def dev_accounts_for(concurrency: int) -> int:
    """anvil accounts for a run at `concurrency`: the roles, the customers, the emitter's."""
    customers = max(ANVIL_DEFAULT_ACCOUNTS - ROLE_ACCOUNTS - 1, WALLETS_PER_LIFECYCLE * concurrency)
    return ROLE_ACCOUNTS + customers + 1


class BenchFailure(Exception):
    """A booking did not go the way the bench drives it (the message says where)."""


@dataclass(frozen=True, kw_only=True)
class Customer:
    user_id: str
    wallet: str
    headers: dict[str, str]


def bench_bearer(settings: Settings, *, sub: str, role: str, wallet: str | None = None) -> str:
    """An Authorization header value for a development token that lasts the whole run."""
    with warnings.catch_warnings():
        # The published dev secret is short on purpose; production refuses it anyway.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = mint_token(
            settings.jwt_secret.get_secret_value(),
            sub=sub,
            role=role,
            wallet=wallet,
            ttl_seconds=6 * 3600,
            algorithm=settings.jwt_algorithm,
        )
    return f"Bearer {token}"


@dataclass(kw_only=True)
class Lifecycle:
    """One booking's timeline, wall-clock seconds (time.time(), comparable with server times)."""

    booking_id: str = ""
    chain_booking_id: str = ""
    payment_tx: str = ""
    started: float = 0.0
    created: float = 0.0
    authorized: float = 0.0
    payment_sent: float = 0.0
    receipt_visible: float = 0.0
    paid_seen: float = 0.0
    completion_sent: float = 0.0
    completion_receipt: float = 0.0
    completed_seen: float = 0.0

    @property
    def paid_latency(self) -> float:
        return self.paid_seen - self.receipt_visible

    def steps(self) -> dict[str, float]:
        """Seconds per step of a whole lifecycle, in order; together they make up its wall time.

        A send includes the wait for its wallet (one transaction in flight per wallet).
        """
        return {
            "create": self.created - self.started,
            "authorize": self.authorized - self.created,
            "pay send": self.payment_sent - self.authorized,
            "pay receipt": self.receipt_visible - self.payment_sent,
            "receipt->PAID": self.paid_seen - self.receipt_visible,
            "complete send": self.completion_sent - self.paid_seen,
            "complete receipt": self.completion_receipt - self.completion_sent,
            "receipt->COMPLETED": self.completed_seen - self.completion_receipt,
        }


class StatusWatcher:
    """One query per `interval` for every awaited booking; notes when each reaches a status."""

    def __init__(self, engine: AsyncEngine, interval: float = 0.005) -> None:
        self.engine = engine
        self.interval = interval
        self._waiting: dict[str, list[tuple[frozenset[str], asyncio.Future[float]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.queries = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def reach(self, booking_id: str, statuses: frozenset[str], within: float) -> float:
        """When (time.time()) the row first showed one of `statuses`."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(booking_id, []).append((statuses, future))
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            raise BenchFailure(
                f"booking {booking_id} not {sorted(statuses)} in {within}s"
            ) from None

    async def _run(self) -> None:
        query = text("SELECT id::text, status FROM bookings WHERE id = ANY(CAST(:ids AS uuid[]))")
        async with self.engine.connect() as conn:
            while True:
                if not self._waiting:
                    await asyncio.sleep(self.interval)
                    continue
                ids = list(self._waiting)
                rows = (await conn.execute(query, {"ids": ids})).all()
                await conn.commit()  # a fresh snapshot next time
                self.queries += 1
                seen = time.time()
                for booking_id, status in rows:
                    self._settle(booking_id, status, seen)
                await asyncio.sleep(self.interval)

    def _settle(self, booking_id: str, status: str, seen: float) -> None:
        left = []
        for statuses, future in self._waiting.get(booking_id, []):
            if future.done():
                continue
            if status in statuses:
                future.set_result(seen)
            elif status in FAILED:
                future.set_exception(BenchFailure(f"booking {booking_id} ended {status}"))
            else:
                left.append((statuses, future))
        if left:
            self._waiting[booking_id] = left
        else:
            self._waiting.pop(booking_id, None)


class BookingTraffic:
    """Creates, authorizes, pays and completes bookings; counts every API status code."""

    def __init__(self, stack: BenchStack, engine: AsyncEngine, api_url: str | None = None) -> None:
        self.stack = stack
        self.api = httpx.AsyncClient(
            base_url=api_url or stack.api_url,
            timeout=60.0,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.driver = EscrowDriver(stack.node, stack.deployment)
        self.abi = escrow_abi()
        self.watcher = StatusWatcher(engine)
        self.codes: Counter[int] = Counter()
        self.failures: list[str] = []
        settings = Settings()
        # The marketplace's server credential creates every booking (price and parties are
        # its to decide); each customer then pays and completes with its own token.
        self.marketplace = {
            "Authorization": bench_bearer(settings, sub="bench-marketplace", role="service")
        }
        self.customers: list[Customer] = []
        # The last dev wallet is the catch-up emitter's (bench/listener.py).
        for n, wallet in enumerate(stack.roles.wallets[:-1]):
            sub = f"bench-customer-{n}"
            bearer = bench_bearer(settings, sub=sub, role="customer", wallet=wallet.address)
            self.customers.append(
                Customer(user_id=sub, wallet=wallet.address, headers={"Authorization": bearer})
            )
        self._next = 0
        # anvil numbers an unlocked account's transactions as they arrive: two in flight from
        # one wallet can get the same nonce ("replacement transaction underpriced").
        self._sending = {c.wallet: asyncio.Lock() for c in self.customers}

    async def start(self) -> None:
        """Each wallet approves the escrow once; the watcher starts polling."""
        usdc = self.stack.deployment.usdc
        for customer in self.customers:
            data = self.driver.usdc_abi.encode_call("approve", self.driver.escrow, 2**256 - 1)
            await self.driver.receipt(await self.driver.transact(customer.wallet, usdc, data))
        self.watcher.start()

    async def close(self) -> None:
        await self.watcher.stop()
        await self.api.aclose()
        await self.driver.close()

    def customer(self) -> Customer:
        """Round robin over the funded wallets: no wallet's nonce queue serializes the run."""
        self._next += 1
        return self.customers[self._next % len(self.customers)]

    async def call(
        self,
        customer: Customer | None,
        method: str,
        path: str,
        extra: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """`customer`'s request, or the marketplace's when it is None."""
        headers = (self.marketplace if customer is None else customer.headers) | (extra or {})
        response = await self.api.request(method, path, headers=headers, **kw)
        self.codes[response.status_code] += 1
        return response

    def create_body(self, customer: Customer) -> dict[str, str]:
        return {
            "service_id": "bench",
            "provider_id": "bench-provider",
            "customer_id": customer.user_id,
            "customer_wallet": customer.wallet,
            "provider_wallet": PROVIDER_WALLET,
            "amount": AMOUNT,
            "scheduled_at": (datetime.now(UTC) + timedelta(days=1))
            .replace(microsecond=0)
            .isoformat(),
        }

    async def create(
        self, customer: Customer, run: Lifecycle, body: dict[str, str] | None = None
    ) -> None:
        """POST /bookings (`body`, else `create_body(customer)`), retried on 503 as documented."""
        body = body or self.create_body(customer)
        run.started = time.time()
        key = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(CREATE_ATTEMPTS):
            response = await self.call(None, "POST", "/bookings", json=body, extra=key)
            # Under overload the API answers 503 "not recorded yet": the documented retry is
            # the same request with the same Idempotency-Key.
            if response.status_code != 503:
                break
            await asyncio.sleep(1.0)
        if response.status_code not in (200, 201):
            raise BenchFailure(f"create: HTTP {response.status_code} {response.text[:200]}")
        run.booking_id = str(response.json()["id"])
        run.created = time.time()

    async def authorize(self, customer: Customer, run: Lifecycle) -> dict[str, Any]:
        response = await self.call(
            customer, "POST", f"/bookings/{run.booking_id}/payment-authorization"
        )
        if response.status_code != 200:
            raise BenchFailure(f"authorize: HTTP {response.status_code} {response.text[:200]}")
        run.authorized = time.time()
        signed: dict[str, Any] = response.json()
        return signed

    async def pay(self, customer: Customer, run: Lifecycle, signed: dict[str, Any]) -> None:
        auth = booking_authorization_from_api(signed["authorization"])
        data = self.abi.encode_call(
            "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed["signature"][2:])
        )
        run.chain_booking_id = auth.booking_id
        run.payment_tx = await self.send(customer, data)
        run.payment_sent = time.time()
        await self._receipt(run.payment_tx)
        run.receipt_visible = time.time()

    async def complete(self, customer: Customer, run: Lifecycle) -> None:
        data = self.abi.encode_call("completeService", bytes.fromhex(run.chain_booking_id[2:]))
        tx_hash = await self.send(customer, data)
        run.completion_sent = time.time()
        await self._receipt(tx_hash)
        run.completion_receipt = time.time()

    async def send(self, customer: Customer, data: bytes) -> str:
        async with self._sending[customer.wallet]:
            return await self.driver.transact(customer.wallet, self.driver.escrow, data)

    async def _receipt(self, tx_hash: str) -> None:
        # Automine: the receipt is normally there on the first read; the loop is for load.
        receipt = await self.driver.receipt(tx_hash)
        if int(receipt["status"], 16) != 1:
            raise BenchFailure(f"transaction {tx_hash} reverted")

    async def prepared(self) -> tuple[Customer, Lifecycle, dict[str, Any]]:
        """A booking created and authorized, ready to pay."""
        customer = self.customer()
        run = Lifecycle()
        await self.create(customer, run)
        return customer, run, await self.authorize(customer, run)

    async def paid(
        self, customer: Customer, run: Lifecycle, signed: dict[str, Any], within: float = 120
    ) -> None:
        await self.pay(customer, run, signed)
        run.paid_seen = await self.watcher.reach(run.booking_id, PAID_OR_LATER, within)

    async def lifecycle(self, within: float = 120) -> Lifecycle:
        """Created, authorized, paid (confirmed through the listener), completed by the customer."""
        customer, run, signed = await self.prepared()
        await self.paid(customer, run, signed, within)
        await self.complete(customer, run)
        run.completed_seen = await self.watcher.reach(
            run.booking_id, frozenset({"COMPLETED"}), within
        )
        return run


async def _counted(traffic: BookingTraffic) -> Lifecycle | None:
    """One lifecycle; a failure is counted (and shown in the table), not fatal to the run."""
    try:
        return await traffic.lifecycle()
    except (BenchFailure, httpx.HTTPError, RuntimeError) as exc:
        traffic.failures.append(f"{type(exc).__name__}: {exc}"[:300])
        return None


async def closed_loop(
    traffic: BookingTraffic, count: int, concurrency: int
) -> tuple[list[Lifecycle], float]:
    """`count` lifecycles, `concurrency` at a time; the completed ones and the elapsed seconds."""
    limit = asyncio.Semaphore(concurrency)

    async def one() -> Lifecycle | None:
        async with limit:
            return await _counted(traffic)

    began = time.perf_counter()
    runs = await asyncio.gather(*(one() for _ in range(count)))
    return [r for r in runs if r is not None], time.perf_counter() - began


async def open_loop(traffic: BookingTraffic, count: int, per_second: float) -> list[Lifecycle]:
    """`count` lifecycles started at a fixed arrival rate, whatever the system's speed."""
    gap = 1.0 / per_second
    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        tasks = []
        for n in range(count):
            tasks.append(group.create_task(_counted(traffic)))
            await asyncio.sleep(max(0.0, began + (n + 1) * gap - time.perf_counter()))
    return [r for t in tasks if (r := t.result()) is not None]


async def light_load(traffic: BookingTraffic, count: int, gap: float = 0.1) -> list[Lifecycle]:
    """One payment at a time on an idle system: bookings prepared first, then paid in turn."""
    ready = [await traffic.prepared() for _ in range(count)]
    runs = []
    for customer, run, signed in ready:
        await traffic.paid(customer, run, signed)
        runs.append(run)
        await asyncio.sleep(gap)
    return runs
