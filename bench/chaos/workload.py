"""The mixed workload: bookings through the public API, paid and settled by real wallets.

Kinds (as `bookme demo` drives them, many at once): paid then auto-completed by the workflow,
paid then completed by the customer, paid then cancelled late with a signed split refund, never
paid (payment deadline), and orphan payments for ids the backend never issued. Each booking has
its own wallet (derived from the seed), so a reorg that drops one payment disturbs no other
wallet's nonces. The client behaves like a real one: it retries connection errors and 5xx with
backoff, and re-sends a create with the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from eth_account import Account
from eth_utils.crypto import keccak
from jwt.warnings import InsecureKeyLengthWarning

from api.auth import mint_token
from bench.chaos.config import ChaosConfig
from bookme.demo import booking_authorization_from_api, cancellation_authorization_from_api
from bookme.demo.relayed import signed_transfer
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
)
from chain.escrow import EscrowReader, escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender
from chain.signing import sign_booking_authorization
from workflows.constants import BLOCK_TIME_MARGIN
from workflows.types import MONEY_HELD_STATUSES, TERMINAL_STATUSES, BookingStatus

ZERO = "0x0000000000000000000000000000000000000000"
GAS_WEI = 10 * 10**18
# A client's patience: longer than any planned outage (Temporal down 2 min, a restore from a
# backup about 3), so a flow waits one out as a customer would instead of leaving its booking
# PAID until an appointment an hour away.
PATIENCE_SECONDS = 240.0
FLOW_SECONDS = 2 * PATIENCE_SECONDS
# Statuses a booking whose payment came back after a reorg may be found in.
PAID_AGAIN = MONEY_HELD_STATUSES | {BookingStatus.COMPLETED, BookingStatus.CANCELLED}
RETRY_MAX_SECONDS = 2.0
TERMINAL = TERMINAL_STATUSES  # StrEnum members: the rows' status strings compare equal
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Kind(StrEnum):
    AUTO_COMPLETE = "auto_complete"
    CUSTOMER_COMPLETE = "customer_complete"
    CANCEL_SPLIT = "cancel_split"
    UNPAID = "unpaid"
    ORPHAN = "orphan"
    REORG_VICTIM = "reorg_victim"
    # Attacks, each with its victims' honest flow (bench/chaos/adversary.py).
    ADV_SET_TERMS = "attack_set_terms"
    ADV_FAKE_COMPLETION = "attack_fake_completion"
    ADV_BURN_BUDGET = "attack_burn_budget"
    ADV_STREAM_FLOOD = "attack_stream_flood"
    ADV_REPLAY = "attack_replay"
    ADV_CANCEL_THEN_PAY = "attack_cancel_then_pay"


MIX: dict[Kind, float] = {
    Kind.AUTO_COMPLETE: 0.30,
    Kind.CUSTOMER_COMPLETE: 0.22,
    Kind.CANCEL_SPLIT: 0.20,
    Kind.UNPAID: 0.18,
    Kind.ORPHAN: 0.10,
}
# Of the bookings an honest customer pays, this share pays with one signature that the platform
# relays (issue #19); the others send approve + createAndPayBooking themselves. By index, so a
# seed always relays the same bookings.
RELAYED_EVERY = 4


RELAYABLE = frozenset({Kind.AUTO_COMPLETE, Kind.CUSTOMER_COMPLETE, Kind.CANCEL_SPLIT})


def pays_relayed(record: BookingRecord) -> bool:
    """Honest flows only: an attack's victims pay as their attack's script says."""
    return record.kind in RELAYABLE and record.index % RELAYED_EVERY == 0


ATTACKS = (
    Kind.ADV_SET_TERMS,
    Kind.ADV_FAKE_COMPLETION,
    Kind.ADV_BURN_BUDGET,
    Kind.ADV_STREAM_FLOOD,
    Kind.ADV_REPLAY,
    Kind.ADV_CANCEL_THEN_PAY,
)


class FlowError(Exception):
    """A booking's client flow could not go on (the message says where)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the API's refusal (a 4xx), when that is what stopped it


@dataclass(frozen=True, kw_only=True)
class ApiCall:
    at: float
    method: str
    route: str
    status: int | None  # None: no HTTP answer (connection refused or reset)
    code: str = ""  # the error body's `code`, for 5xx
    seconds: float | None = None  # request to answer (None: no answer)
    adversarial: bool = False  # sent by an attacker (bench/chaos/adversary.py)
    retry_after: str | None = None  # the answer's Retry-After header


@dataclass
class ApiRecorder:
    """Every API answer the workload got, with its time (monotonic), for the 5xx check."""

    calls: list[ApiCall] = field(default_factory=list)

    def record(
        self,
        method: str,
        path: str,
        status: int | None,
        code: str = "",
        *,
        seconds: float | None = None,
        adversarial: bool = False,
        retry_after: str | None = None,
    ) -> None:
        route = _UUID.sub("{id}", path)
        self.calls.append(
            ApiCall(
                at=time.monotonic(),
                method=method,
                route=route,
                status=status,
                code=code,
                seconds=seconds,
                adversarial=adversarial,
                retry_after=retry_after,
            )
        )


@dataclass(kw_only=True)
class BookingRecord:
    index: int
    kind: Kind
    amount: int
    inviter: bool
    booking_id: str | None = None
    chain_booking_id: str | None = None
    workflow_id: str | None = None
    payment_tx: str | None = None
    error: str | None = None


# A flow the workload runs for a kind it does not drive itself (the attacks).
Flow = Callable[[BookingRecord], Awaitable[None]]


def _error_code(response: httpx.Response) -> str:
    if response.status_code < 500:
        return ""
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return response.text[:60]


def wallet_key(seed: int, index: int) -> str:
    """The booking's customer key, reproducible from the seed (a local chain only)."""
    return "0x" + keccak(text=f"bookme-chaos:{seed}:{index}").hex().removeprefix("0x")


def customer_id(wallet: str) -> str:
    """The user id of the customer holding `wallet` (its token's `sub`)."""
    return f"chaos-{wallet.lower()}"


def is_attack(index: int, share: float) -> bool:
    """Whether the `index`th booking is an attack: `share` of them, spread evenly over the run."""
    return int((index + 1) * share) > int(index * share)


def plan_bookings(config: ChaosConfig, rng: random.Random) -> list[BookingRecord]:
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    records = []
    honest = attacks = 0
    for index in range(config.bookings):
        # Each kind at least once, then by weight.
        if is_attack(index, config.adversary_share):
            kind = ATTACKS[attacks] if attacks < len(ATTACKS) else rng.choice(ATTACKS)
            attacks += 1
        else:
            kind = kinds[honest] if honest < len(kinds) else rng.choices(kinds, weights)[0]
            honest += 1
        amount = rng.randrange(1_000_000, 500_000_000) + rng.randrange(1, 999)
        records.append(
            BookingRecord(index=index, kind=kind, amount=amount, inviter=rng.random() < 0.3)
        )
    return records


def victim_index(planned: int, extra: list[BookingRecord]) -> int:
    """The wallet index of the next reorg victim: the plan's wallets, then one per victim (the
    harness funds exactly those; the attackers' own bookings in ``extra`` use other wallets)."""
    return planned + sum(record.kind is Kind.REORG_VICTIM for record in extra)


class Workload:
    """Drives the planned bookings against one stack."""

    def __init__(
        self,
        *,
        config: ChaosConfig,
        api_url: str,
        chain: ChainClient,
        deployment: Deployment,
        signer_key: str,
        recorder: ApiRecorder,
    ) -> None:
        self.config = config
        # Kinds another module drives (the attacks register theirs: bench/chaos/adversary.py).
        self.flows: dict[Kind, Flow] = {}
        self.chain = chain
        self.deployment = deployment
        self.recorder = recorder
        self.rng = random.Random(config.seed)
        self.records = plan_bookings(config, self.rng)
        # Made during the run: reorg victims (the fault plan's) and the attackers' own bookings.
        self.extra: list[BookingRecord] = []
        self.usdc = ContractAbi(load_artifact("MockUSDC").abi)
        self.escrow = escrow_abi()
        self.reader = EscrowReader(chain, deployment.escrow, usdc_address=deployment.usdc)
        self._signer_key = signer_key
        self._api_url = api_url
        self._http = httpx.AsyncClient(base_url=api_url, timeout=20.0)
        self._settings = Settings()
        self._provider = Account.create().address
        self._inviter = Account.create().address
        # Paid auto-completing bookings per appointment slot: the operator's bursts to come.
        self.bursts: Counter[datetime] = Counter()

    async def close(self) -> None:
        await self._http.aclose()

    # --- setup ---

    def wallet(self, index: int) -> Any:
        return Account.from_key(wallet_key(self.config.seed, index))

    async def fund_gas(self, count: int) -> None:
        """Gas for every wallet up front: a reorg never rolls back state made before it."""
        for start in range(0, count, 50):
            await asyncio.gather(
                *(
                    self.chain.request("anvil_setBalance", [self.wallet(i).address, hex(GAS_WEI)])
                    for i in range(start, min(count, start + 50))
                )
            )

    # --- HTTP with retries, every answer recorded ---

    def _headers(self, wallet: str | None) -> dict[str, str]:
        """A customer's token for `wallet`; the marketplace's service token when None."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = mint_token(
                self._settings.jwt_secret.get_secret_value(),
                sub=customer_id(wallet) if wallet else "chaos-marketplace",
                role="customer" if wallet else "service",
                wallet=wallet,
                algorithm=self._settings.jwt_algorithm,
            )
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self,
        method: str,
        path: str,
        expect: tuple[int, ...],
        wallet: str | None,
        *,
        within: float = FLOW_SECONDS,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        pause = 0.25
        while True:
            status: int | None = None
            sent = time.monotonic()
            try:
                response = await self._http.request(
                    method, path, headers=self._headers(wallet) | (headers or {}), **kwargs
                )
                status = response.status_code
                self.recorder.record(
                    method,
                    path,
                    status,
                    _error_code(response),
                    seconds=time.monotonic() - sent,
                    retry_after=response.headers.get("retry-after"),
                )
                if status in expect:
                    body: dict[str, Any] = response.json()
                    return body
                if status < 500 and status != 429:
                    raise FlowError(
                        f"{method} {path}: HTTP {status} {response.text[:300]}", status=status
                    )
            except httpx.TransportError:
                self.recorder.record(method, path, None)
            if time.monotonic() > deadline:
                raise FlowError(f"{method} {path}: no answer in {within:.0f}s (last {status})")
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    async def wait_status(
        self,
        record: BookingRecord,
        wanted: AbstractSet[str],
        within: float,
        wallet: str | None = None,
    ) -> str:
        """Poll the booking as its customer (the record's wallet unless `wallet` is given)."""
        deadline = time.monotonic() + within
        wallet = wallet or self.wallet(record.index).address
        while True:
            row = await self.call("GET", f"/bookings/{record.booking_id}", (200,), wallet)
            if row["status"] in wanted:
                return str(row["status"])
            if row["status"] in TERMINAL or time.monotonic() > deadline:
                raise FlowError(f"expected {sorted(wanted)}, found {row['status']}")
            await asyncio.sleep(1.0)

    # --- chain ---

    def sender(self, index: int) -> TransactionSender:
        key = wallet_key(self.config.seed, index)
        return TransactionSender(self.chain, TransactionKey(key), chain_id=self.deployment.chain_id)

    async def send(self, sender: TransactionSender, to: str, data: bytes) -> str:
        sent, receipt = await sender.send_and_wait(to=to, data=data)
        if not receipt.succeeded:
            raise FlowError(f"transaction {sent.tx_hash} reverted")
        return sent.tx_hash

    async def fund_usdc(self, sender: TransactionSender, amount: int) -> None:
        await self.send(
            sender, self.deployment.usdc, self.usdc.encode_call("mint", sender.address, amount)
        )
        await self.send(
            sender,
            self.deployment.usdc,
            self.usdc.encode_call("approve", self.deployment.escrow, amount),
        )

    # --- one booking ---

    async def create(
        self,
        record: BookingRecord,
        scheduled_at: datetime,
        *,
        wallet: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Create the record's booking, for the record's wallet unless `wallet` names another."""
        own = wallet is None
        wallet = wallet or self.wallet(record.index).address
        body: dict[str, Any] = {
            "service_id": f"chaos-{record.kind.value}",
            "provider_id": "chaos-provider",
            "customer_id": customer_id(wallet),
            "customer_wallet": wallet,
            "provider_wallet": provider or self._provider,
            "amount": f"{record.amount // 10**6}.{record.amount % 10**6:06d}",
            "scheduled_at": scheduled_at.replace(microsecond=0).isoformat(),
        }
        if record.inviter:
            body["inviter_wallet"] = self._inviter
        booking = await self.call(
            "POST",
            "/bookings",
            (200, 201),
            None,  # the marketplace decides price and parties; the customer then pays
            json=body,
            headers={
                "Idempotency-Key": f"chaos-{self.config.seed}-{record.index}"
                + ("" if own else f"-{wallet.lower()}")
            },
        )
        record.booking_id = str(booking["id"])
        record.workflow_id = f"booking-{record.booking_id}"
        record.chain_booking_id = chain_booking_id(uuid.UUID(record.booking_id))

    async def authorize_payment(self, record: BookingRecord, wallet: str) -> dict[str, Any]:
        """The signed payment authorization the booking's customer (`wallet`) asks for."""
        return await self.call(
            "POST", f"/bookings/{record.booking_id}/payment-authorization", (200,), wallet
        )

    async def pay(
        self, record: BookingRecord, sender: TransactionSender, signed: dict[str, Any] | None = None
    ) -> None:
        """Pay on chain with `signed` (asked for now when None) and report it."""
        wallet = sender.address
        if signed is None and pays_relayed(record):
            await self.pay_relayed(record, wallet)
            return
        if signed is None:
            signed = await self.authorize_payment(record, wallet)
        auth = booking_authorization_from_api(signed["authorization"])
        call = self.escrow.encode_call(
            "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed["signature"][2:])
        )
        record.payment_tx = await self.send(sender, self.deployment.escrow, call)
        await self.report(record, wallet, record.payment_tx, "payment")

    async def pay_relayed(self, record: BookingRecord, wallet: str) -> None:
        """One signature, relayed by the platform; a retry (a worker killed mid-relay, a replica
        gone under the request) gets the same transaction back, never a second payment."""
        path = f"/bookings/{record.booking_id}/payment"
        offered = await self.call(
            "POST", f"{path}-authorization", (200,), wallet, params={"relayed": "true"}
        )
        body = signed_transfer(offered, wallet_key(self.config.seed, record.index))
        relayed = await self.call("POST", path, (200, 202), wallet, json=body)
        record.payment_tx = str(relayed["tx_hash"])

    async def report(self, record: BookingRecord, wallet: str, tx: str, kind: str) -> None:
        path = f"/bookings/{record.booking_id}/transactions"
        body = {"tx_hash": tx, "kind": kind}
        try:
            await self.call("POST", path, (202,), wallet, json=body)
        except FlowError as exc:
            if exc.status != 409 or "PENDING_PAYMENT booking" not in str(exc):
                raise
            # A reorg took the payment away and its re-inclusion is not confirmed yet: the
            # settlement fits once the booking is paid again, as a customer's app retries it
            # (or is moot once its own event has settled the booking).
            status = await self.wait_status(record, PAID_AGAIN, PATIENCE_SECONDS, wallet)
            if status not in TERMINAL:
                await self.call("POST", path, (202,), wallet, json=body)

    async def run_one(self, record: BookingRecord) -> None:
        try:
            async with asyncio.timeout(FLOW_SECONDS):
                await self._flow(record)
        except (FlowError, TimeoutError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # any client-side failure is reported per booking
            record.error = f"{type(exc).__name__}: {exc}"

    async def _flow(self, record: BookingRecord) -> None:
        flow = self.flows.get(record.kind)
        if flow is not None:
            await flow(record)
            return
        sender = self.sender(record.index)
        now = datetime.now(UTC)
        if record.kind is Kind.ORPHAN:
            await self.fund_usdc(sender, record.amount)
            await self.orphan(record, sender)
            return
        # Far enough ahead that a create retried through an outage still names a future time.
        soon = now + timedelta(seconds=self.config.create_ahead)
        later = now + timedelta(hours=1)  # inside the late-cancellation window: a split
        slot = self._slot(record, soon)
        await self.create(record, (slot or soon) if record.kind is Kind.AUTO_COMPLETE else later)
        if record.kind is Kind.UNPAID:
            return
        await self.fund_usdc(sender, record.amount)
        await self.pay(record, sender)
        if slot is not None and record.kind is Kind.AUTO_COMPLETE:
            self.bursts[slot] += 1
        if record.kind in (Kind.AUTO_COMPLETE, Kind.REORG_VICTIM):
            return
        await self.wait_status(record, {"PAID"}, PATIENCE_SECONDS)
        if record.kind is Kind.CUSTOMER_COMPLETE:
            await self.complete(record, sender)
            return
        await self.cancel(record, sender)

    def _slot(self, record: BookingRecord, soon: datetime) -> datetime | None:
        """The slot boundary this booking's appointment is bunched on, if it is one of the
        `burst_share` that are (by its index, so a rerun bunches the same ones)."""
        size = self.config.burst_slot
        if not size or random.Random(record.index).random() >= self.config.burst_share:
            return None
        seconds = -(-int(soon.timestamp()) // size) * size
        return datetime.fromtimestamp(seconds, UTC)

    def next_burst(self, within: float) -> tuple[datetime, int] | None:
        """When the next bunch of auto-completions falls due (within `within` seconds) and how
        many bookings it holds; the earliest with the most if several."""
        now = datetime.now(UTC)
        delay = timedelta(seconds=self.config.timers.auto_complete_delay) + BLOCK_TIME_MARGIN
        due = [
            (slot + delay, count)
            for slot, count in self.bursts.items()
            if now < slot + delay <= now + timedelta(seconds=within)
        ]
        return min(due) if due else None

    async def complete(self, record: BookingRecord, sender: TransactionSender) -> None:
        """The customer completes the paid booking on chain and reports it."""
        tx = await self.send(
            sender,
            self.deployment.escrow,
            self.escrow.encode_call(
                "completeService",
                bytes.fromhex(record.chain_booking_id[2:]),  # type: ignore[index]
            ),
        )
        await self.report(record, sender.address, tx, "completion")

    async def cancel(
        self, record: BookingRecord, sender: TransactionSender
    ) -> CancellationAuthorization:
        """The customer cancels the paid booking (late: a split), on chain, and reports it."""
        body = await self.call(
            "POST",
            f"/bookings/{record.booking_id}/cancellation",
            (200,),
            sender.address,
            json={"reason": "chaos: customer cancels late"},
        )
        auth = cancellation_authorization_from_api(body["authorization"])
        tx = await self.send(
            sender,
            self.deployment.escrow,
            self.escrow.encode_call(
                "cancelBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
            ),
        )
        await self.report(record, sender.address, tx, "cancellation")
        return auth

    async def orphan(self, record: BookingRecord, sender: TransactionSender) -> None:
        """Pay an id the backend never issued, signed by the (local, published) signer key."""
        policy = await self.reader.fee_policy()
        head = await self.chain.get_block("latest")
        now = head.timestamp if head is not None else int(time.time())
        auth = BookingAuthorization(
            booking_id=chain_booking_id(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            customer=sender.address,
            provider=self._provider,
            inviter=ZERO,
            amount=record.amount,
            platform_fee_rate=policy.platform_fee_bps,
            inviter_fee_rate=0,
            release_time=now + 3600,
            expiry=now + 600,
            nonce=secrets.randbits(128),
        )
        record.chain_booking_id = auth.booking_id
        record.workflow_id = f"orphan-{auth.booking_id.lower()}"
        domain = Eip712Domain(
            chain_id=self.deployment.chain_id, verifying_contract=self.deployment.escrow
        )
        signed = sign_booking_authorization(domain, auth, self._signer_key)
        record.payment_tx = await self.send(
            sender,
            self.deployment.escrow,
            self.escrow.encode_call(
                "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(signed.signature[2:])
            ),
        )

    # --- the whole plan ---

    async def run(self) -> None:
        """Start the bookings spread over the configured duration, a bounded number at once."""
        gate = asyncio.Semaphore(self.config.concurrency)
        started = time.monotonic()
        spacing = self.config.duration / max(1, len(self.records))

        async def one(record: BookingRecord) -> None:
            delay = started + record.index * spacing - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                await self.run_one(record)

        await asyncio.gather(*(one(r) for r in self.records))

    def new_victim(self) -> BookingRecord:
        """A booking the deep reorg will drop the payment of (its own wallet, after the plan's)."""
        record = BookingRecord(
            index=victim_index(len(self.records), self.extra),
            kind=Kind.REORG_VICTIM,
            amount=7_654_321,
            inviter=False,
        )
        self.extra.append(record)
        return record

    @property
    def all_records(self) -> list[BookingRecord]:
        return self.records + self.extra
