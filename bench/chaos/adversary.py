"""The attacks of a chaos run, each followed by its victims' honest flow (issue 14).

Each attack is one planned booking of the workload (`Kind.ATTACKS`), run with the honest ones
and under the same faults:

- set terms: a customer (and a provider) create a booking naming its own price, an accomplice
  as provider or a second wallet of its own as inviter: refused; the marketplace's booking is
  then paid at its price and completed;
- fake completion: the provider reports a made-up completion on the customer's paid booking
  before the release time: refused, the booking stays PAID, and the customer completes or
  cancels late;
- budget burn: the provider repeats cancellation requests until refused (its repeat bound or
  the rate limit); the customer then cancels or completes, or an operator refunds in full;
- stream flood: a customer opens more event streams than its cap (the extra ones get 429) and
  pays meanwhile; once it closes them it may open one again;
- replays: another wallet submits the customer's payment authorization, an authorization is
  re-addressed to another booking or replayed after use (all revert, no money moves), and that
  wallet asks for the customer's authorization (refused); both bookings then settle;
- cancel then pay: the customer cancels an unpaid booking while its authorization is valid
  (the cancellation waits, `cancelsAt`) and pays anyway: the booking is PAID and settles, and
  no operator refund is sent.

Everything is recorded in an `AdversaryLog`; `checks.py` judges it after quiescence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import warnings
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from eth_account import Account
from eth_utils.crypto import keccak
from jwt.warnings import InsecureKeyLengthWarning

from api.auth import Role, mint_token
from bench.chaos.adversary_log import (
    AdversaryLog,
    BudgetBurn,
    Expectation,
    Refusal,
    Revert,
    VictimAction,
)
from bench.chaos.workload import (
    ATTACKS,
    GAS_WEI,
    PATIENCE_SECONDS,
    RETRY_MAX_SECONDS,
    BookingRecord,
    Flow,
    FlowError,
    Kind,
    Workload,
    customer_id,
)
from bookme.demo import booking_authorization_from_api
from bookme.settings import Settings
from chain.errors import ExecutionReverted
from chain.keys import TransactionKey
from chain.sender import TransactionSender
from workflows.constants import MAX_CANCELLATION_AUTHORIZATIONS, MAX_REPEATED_UPDATES

T = TypeVar("T")

# An attacker's request is retried through an outage (no answer, 5xx) until it gets a real one.
ANSWER_SECONDS = PATIENCE_SECONDS
# Gas for a transaction that must revert: sent anyway (no estimate), so the chain records it.
REVERT_GAS = 600_000
# A provider's cancellation requests: every one its bounds allow, and then some.
BURN_LIMIT = MAX_REPEATED_UPDATES + MAX_CANCELLATION_AUTHORIZATIONS + 20
REFUSED_AGAIN = 3  # requests after the first refusal, each refused too
# Streams beyond the per-user cap, and how long the flood holds its streams.
FLOOD_EXTRA = 3
FLOOD_TRIES = 3
SLOT_BACK_SECONDS = 30.0
LIMITED = (409, 429)  # a bound reached: limit_reached, or the rate limit
LATER = timedelta(hours=1)  # appointment: inside the late-cancellation window, release far off
SOON = timedelta(seconds=45)  # appointment: auto-completed within the run


def attacker_key(seed: int, index: int) -> str:
    """The key of the wallet attacking booking `index` (a local chain only)."""
    return "0x" + keccak(text=f"bookme-chaos-attacker:{seed}:{index}").hex().removeprefix("0x")


def _code(response: httpx.Response) -> tuple[str, str]:
    """The error body's code and message, for any refusal."""
    if response.status_code < 400:
        return "", ""
    try:
        body = response.json()
        return str(body.get("code", "")), str(body.get("message", ""))[:160]
    except ValueError:
        return "", response.text[:160]


def fresh_authorization(status: int | None, answer: dict[str, Any], seen: set[str]) -> str | None:
    """The nonce of a cancellation authorization answered past the bound on repeats that is
    still allowed: a new one (the last neared its expiry, so issuing one is a change, not a
    repeat) within the bound on authorizations. None: the answer must have been a refusal."""
    nonce = authorization_nonce(answer) if status == 200 else None
    if nonce is None or nonce in seen or len(seen) >= MAX_CANCELLATION_AUTHORIZATIONS:
        return None
    return nonce


def authorization_nonce(answer: dict[str, Any]) -> str | None:
    """The nonce of the authorization in a cancellation answer; None when it carries none (an
    answer for a booking that is not paid, for one)."""
    authorization = answer.get("authorization") or {}
    nonce = authorization.get("nonce")
    return None if nonce is None else str(nonce)


class Adversary:
    """Runs the attack kinds of one workload; `flows` is what the workload dispatches to."""

    def __init__(self, workload: Workload, api_url: str, stream_url: str | None = None) -> None:
        self.w = workload
        self.log = AdversaryLog()
        self._settings = Settings()
        self._http = httpx.AsyncClient(base_url=api_url, timeout=20.0)
        # The per-user stream cap is counted per API process (api/stream_slots.py): behind the
        # balancer a user may hold up to cap x replicas, so the flood goes to one replica.
        self._streams = httpx.AsyncClient(base_url=stream_url or api_url, timeout=20.0)
        seed = workload.config.seed
        self.provider = Account.from_key(attacker_key(seed, -1)).address

    @property
    def flows(self) -> dict[Kind, Flow]:
        return {
            Kind.ADV_SET_TERMS: self.set_terms,
            Kind.ADV_FAKE_COMPLETION: self.fake_completion,
            Kind.ADV_BURN_BUDGET: self.burn_budget,
            Kind.ADV_STREAM_FLOOD: self.stream_flood,
            Kind.ADV_REPLAY: self.replay,
            Kind.ADV_CANCEL_THEN_PAY: self.cancel_then_pay,
        }

    async def close(self) -> None:
        await self._http.aclose()
        await self._streams.aclose()

    async def fund_gas(self) -> None:
        """Gas for every attacking wallet up front, as the workload does for its own."""
        seed = self.w.config.seed
        await asyncio.gather(
            *(
                self.w.chain.request(
                    "anvil_setBalance",
                    [Account.from_key(attacker_key(seed, r.index)).address, hex(GAS_WEI)],
                )
                for r in self.w.records
                if r.kind in ATTACKS
            )
        )

    # --- callers ---

    def token(self, role: Role, wallet: str | None, sub: str | None = None) -> dict[str, str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = mint_token(
                self._settings.jwt_secret.get_secret_value(),
                sub=sub or (customer_id(wallet) if wallet else f"chaos-{role.value}"),
                role=role.value,
                wallet=wallet,
                algorithm=self._settings.jwt_algorithm,
            )
        return {"Authorization": f"Bearer {token}"}

    def as_provider(self) -> dict[str, str]:
        return self.token(Role.PROVIDER, self.provider, sub="chaos-attacking-provider")

    def attacker(self, record: BookingRecord) -> TransactionSender:
        key = attacker_key(self.w.config.seed, record.index)
        return TransactionSender(
            self.w.chain, TransactionKey(key), chain_id=self.w.deployment.chain_id
        )

    # --- requests an attacker sends ---

    async def _answer(
        self, method: str, path: str, headers: dict[str, str], json: Any = None
    ) -> tuple[int | None, str, str, dict[str, Any]]:
        """One request, retried while the API is down (no answer or 5xx): status, code,
        message and body of the first real answer."""
        deadline = time.monotonic() + ANSWER_SECONDS
        pause = 0.25
        status: int | None = None
        code = message = ""
        while True:
            sent = time.monotonic()
            try:
                response = await self._http.request(method, path, headers=headers, json=json)
            except httpx.TransportError:
                status = None
                self.w.recorder.record(method, path, None, adversarial=True)
            else:
                status = response.status_code
                code, message = _code(response)
                self.w.recorder.record(
                    method,
                    path,
                    status,
                    code if status >= 500 else "",
                    seconds=time.monotonic() - sent,
                    adversarial=True,
                    retry_after=response.headers.get("retry-after"),
                )
                if status < 500:
                    try:
                        body = response.json()
                    except ValueError:
                        body = {}
                    return status, code, message, body if isinstance(body, dict) else {}
            if time.monotonic() > deadline:
                return status, code, message, {}
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    async def refused(
        self,
        attack: Kind,
        action: str,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        booking_id: str | None,
        json: Any = None,
        wanted: tuple[int, ...] = (),
    ) -> int | None:
        """Send a request the API must refuse, and log its answer."""
        started = time.monotonic()
        status, code, _, _ = await self._answer(method, path, headers, json)
        self.log.refusals.append(
            Refusal(
                attack=attack,
                action=action,
                booking_id=booking_id,
                status=status,
                code=code,
                started=started,
                at=time.monotonic(),
                wanted=wanted,
            )
        )
        return status

    async def must_revert(
        self, attack: Kind, action: str, sender: TransactionSender, call: bytes, expected: str
    ) -> None:
        """Send a transaction the contract must revert, and log what it moved (nothing)."""
        escrow = self.w.deployment.escrow
        before = await self.w.reader.usdc_balance_of(sender.address)
        error = ""
        try:
            await self.w.chain.call({"from": sender.address, "to": escrow, "data": call})
        except ExecutionReverted as exc:
            error = self.w.escrow.explain(exc).error_name or str(exc)
        sent, receipt = await sender.send_and_wait(to=escrow, data=call, gas=REVERT_GAS)
        after = await self.w.reader.usdc_balance_of(sender.address)
        logs = sum(str(log.get("address", "")).lower() == escrow.lower() for log in receipt.logs)
        self.log.reverts.append(
            Revert(
                attack=attack,
                action=action,
                tx_hash=sent.tx_hash,
                reverted=not receipt.succeeded,
                error=error,
                expected_error=expected,
                usdc_moved=before - after,
                escrow_logs=logs,
            )
        )

    # --- what a victim does (the policy allows it: it must work) ---

    async def allowed(
        self, attack: Kind, record: BookingRecord | None, action: str, step: Awaitable[T]
    ) -> T:
        """Run a victim's step; log whether it worked (a cancelled flow counts as failed)."""
        started = time.monotonic()
        failure: BaseException | None = None
        try:
            return await step
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self.log.victims.append(
                VictimAction(
                    attack=attack,
                    booking_id=record.booking_id if record is not None else None,
                    action=action,
                    ok=failure is None,
                    status=failure.status if isinstance(failure, FlowError) else None,
                    detail="" if failure is None else f"{type(failure).__name__}: {failure}"[:300],
                    started=started,
                    ended=time.monotonic(),
                )
            )

    def check(self, attack: Kind, record: BookingRecord, action: str, ok: bool, why: str) -> None:
        """A victim-side observation (the booking's state after an attack), logged as an action."""
        now = time.monotonic()
        self.log.victims.append(
            VictimAction(
                attack=attack,
                booking_id=record.booking_id,
                action=action,
                ok=ok,
                status=None,
                detail="" if ok else why,
                started=now,
                ended=now,
                observed=True,
            )
        )

    def expect(self, attack: Kind, record: BookingRecord, customer: str, **fields: Any) -> None:
        if record.booking_id is None or record.chain_booking_id is None:
            raise FlowError("an expectation for a booking that was never created")
        self.log.expectations.append(
            Expectation(
                attack=attack,
                booking_id=record.booking_id,
                chain_booking_id=record.chain_booking_id,
                customer=customer,
                provider=self.provider,
                amount=record.amount,
                **fields,
            )
        )

    async def funded_booking(
        self, attack: Kind, record: BookingRecord, ahead: timedelta
    ) -> TransactionSender:
        """The customer's wallet funded (first: the payment may race an expiry), then its
        booking with the attacking provider created by the marketplace, `ahead` of now."""
        record.inviter = False
        sender = self.w.sender(record.index)
        await self.allowed(
            attack, record, "fund the wallet", self.w.fund_usdc(sender, record.amount)
        )
        await self.allowed(
            attack,
            record,
            "marketplace creates",
            self.w.create(record, datetime.now(UTC) + ahead, provider=self.provider),
        )
        return sender

    async def paid_booking(self, attack: Kind, record: BookingRecord) -> TransactionSender:
        """The victim's booking with the attacking provider, created, paid and PAID."""
        sender = await self.funded_booking(attack, record, LATER)
        await self.allowed(attack, record, "customer pays", self.w.pay(record, sender))
        await self.allowed(
            attack,
            record,
            "booking becomes PAID",
            self.w.wait_status(record, {"PAID"}, PATIENCE_SECONDS),
        )
        return sender

    async def status_of(self, record: BookingRecord, wallet: str) -> str:
        row = await self.w.call("GET", f"/bookings/{record.booking_id}", (200,), wallet)
        return str(row["status"])

    async def settle(self, attack: Kind, record: BookingRecord, sender: TransactionSender) -> None:
        """The victim customer's last word: complete (even index) or cancel late (odd)."""
        customer = sender.address
        if record.index % 2 == 0:
            await self.allowed(
                attack, record, "customer completes", self.w.complete(record, sender)
            )
            self.expect(attack, record, customer, status="COMPLETED")
            return
        auth = await self.allowed(
            attack, record, "customer cancels late", self.w.cancel(record, sender)
        )
        self.expect(
            attack, record, customer, status="CANCELLED", customer_refund=auth.customer_amount
        )

    # --- the attacks ---

    async def set_terms(self, record: BookingRecord) -> None:
        attack = Kind.ADV_SET_TERMS
        record.inviter = False
        customer = self.w.wallet(record.index).address
        accomplice = self.attacker(record).address
        terms = {
            "service_id": "chaos-attack",
            "provider_id": "chaos-provider",
            "customer_id": customer_id(customer),
            "customer_wallet": customer,
            "provider_wallet": self.provider,
            "amount": f"{record.amount // 10**6}.{record.amount % 10**6:06d}",
            "scheduled_at": (datetime.now(UTC) + LATER).replace(microsecond=0).isoformat(),
        }
        as_customer = self.token(Role.CUSTOMER, customer)
        for action, body in (
            ("customer books at its own price", terms | {"amount": "1.000000"}),
            ("customer names an accomplice as provider", terms | {"provider_wallet": accomplice}),
            ("customer names its second wallet as inviter", terms | {"inviter_wallet": accomplice}),
            (
                "customer creates naming no terms",
                {k: terms[k] for k in ("service_id", "provider_id", "scheduled_at")},
            ),
        ):
            await self.refused(
                attack, action, "POST", "/bookings", as_customer, booking_id=None, json=body
            )
        await self.refused(
            attack,
            "provider books at its own price",
            "POST",
            "/bookings",
            self.as_provider(),
            booking_id=None,
            json=terms | {"amount": "1.000000"},
        )
        sender = await self.paid_booking(attack, record)
        await self.allowed(attack, record, "customer completes", self.w.complete(record, sender))
        self.expect(attack, record, customer, status="COMPLETED")

    async def fake_completion(self, record: BookingRecord) -> None:
        attack = Kind.ADV_FAKE_COMPLETION
        sender = await self.paid_booking(attack, record)
        path = f"/bookings/{record.booking_id}/transactions"
        for kind in ("completion", "payment"):
            await self.refused(
                attack,
                f"provider reports a made-up {kind}",
                "POST",
                path,
                self.as_provider(),
                booking_id=record.booking_id,
                json={"tx_hash": "0x" + secrets.token_hex(32), "kind": kind},
                wanted=(403,),
            )
        status = await self.allowed(
            attack, record, "read the booking", self.status_of(record, sender.address)
        )
        self.check(
            attack, record, "a fake report leaves the booking PAID", status == "PAID", status
        )
        await self.settle(attack, record, sender)

    async def burn_budget(self, record: BookingRecord) -> None:
        attack = Kind.ADV_BURN_BUDGET
        sender = await self.paid_booking(attack, record)
        path = f"/bookings/{record.booking_id}/cancellation"
        body = {"reason": "chaos: the provider burns the budget"}
        answered = 0
        nonces: set[str] = set()
        status: int | None = 200
        first = ""
        started = time.monotonic()
        for _ in range(BURN_LIMIT):
            status, code, message, answer = await self._answer(
                "POST", path, self.as_provider(), body
            )
            if status != 200:
                first = f"{status} {code}: {message}"
                break
            answered += 1
            nonces.add(str(authorization_nonce(answer)))
        self.log.burns.append(
            BudgetBurn(
                booking_id=str(record.booking_id),
                answered=answered,
                authorizations=len(nonces),
                refusal=first,
            )
        )
        if status is None or status >= 500:
            # The API stayed down past the retries: the burn proves nothing either way.
            self.log.notes.append(f"budget burn on {record.booking_id} cut short: {first}")
            raise FlowError(f"budget burn cut short by an outage: {first}")
        self.log.refusals.append(
            Refusal(
                attack=attack,
                action="provider's repeated cancellation requests reach a bound",
                booking_id=record.booking_id,
                status=status,
                code=first,
                started=started,
                at=time.monotonic(),
                wanted=LIMITED,
            )
        )
        for n in range(REFUSED_AGAIN):
            asked = time.monotonic()
            status, code, _, answer = await self._answer("POST", path, self.as_provider(), body)
            nonce = fresh_authorization(status, answer, nonces)
            if nonce is not None:
                nonces.add(nonce)
                self.log.notes.append(
                    f"budget burn on {record.booking_id}: a fresh authorization past the repeat"
                    f" bound ({len(nonces)} of {MAX_CANCELLATION_AUTHORIZATIONS})"
                )
                continue
            self.log.refusals.append(
                Refusal(
                    attack=attack,
                    action=f"provider's cancellation request past its bound ({n + 1})",
                    booking_id=record.booking_id,
                    status=status,
                    code=code,
                    started=asked,
                    at=time.monotonic(),
                    wanted=LIMITED,
                )
            )
        if record.index % 3 == 2:
            operator = self.token(Role.OPERATOR, None, sub="chaos-operator")
            await self.allowed(
                attack,
                record,
                "operator refunds in full",
                self.w.call(
                    "POST",
                    f"/admin/bookings/{record.booking_id}/emergency-cancel",
                    (200,),
                    None,
                    headers=operator,
                    json={"reason": "chaos: operator refunds after the provider's burn"},
                ),
            )
            self.expect(
                attack,
                record,
                sender.address,
                status="CANCELLED",
                customer_refund=record.amount,
            )
            return
        await self.settle(attack, record, sender)

    async def stream_flood(self, record: BookingRecord) -> None:
        attack = Kind.ADV_STREAM_FLOOD
        sender = await self.funded_booking(attack, record, LATER)
        customer = sender.address
        headers = self.token(Role.CUSTOMER, customer)
        path = f"/bookings/{record.booking_id}/stream"
        held = await self._flood(attack, record, path, headers)
        try:
            # The flooder's other requests are still served while its streams are open.
            await self.allowed(attack, record, "customer pays", self.w.pay(record, sender))
        finally:
            for response in held:
                await response.aclose()
        await self.allowed(
            attack, record, "a stream again once closed", self._slot_back(path, headers)
        )
        await self.allowed(
            attack,
            record,
            "booking becomes PAID",
            self.w.wait_status(record, {"PAID"}, PATIENCE_SECONDS),
        )
        await self.allowed(attack, record, "customer completes", self.w.complete(record, sender))
        self.expect(attack, record, customer, status="COMPLETED")

    async def _open(self, path: str, headers: dict[str, str]) -> tuple[int | None, Any]:
        """Open one stream; (status, the open response when 200)."""
        sent = time.monotonic()
        request = self._streams.build_request("GET", path, headers=headers)
        try:
            response = await self._streams.send(request, stream=True)
        except httpx.TransportError:
            self.w.recorder.record("GET", path, None, adversarial=True)
            return None, None
        status = response.status_code
        self.w.recorder.record(
            "GET",
            path,
            status,
            seconds=time.monotonic() - sent,
            adversarial=True,
            retry_after=response.headers.get("retry-after"),
        )
        if status == 200:
            return status, response
        await response.aread()
        await response.aclose()
        return status, None

    async def _flood(
        self, attack: Kind, record: BookingRecord, path: str, headers: dict[str, str]
    ) -> list[Any]:
        """Hold the cap's worth of streams, then ask for more (each must get 429)."""
        cap = self._settings.max_streams_per_user
        for _ in range(FLOOD_TRIES):
            started = time.monotonic()
            held: list[Any] = []
            for _ in range(cap):
                _, response = await self._open(path, headers)
                if response is None:
                    break
                held.append(response)
            if len(held) < cap:  # an outage or slots not yet released: close and try again
                for response in held:
                    await response.aclose()
                await asyncio.sleep(5.0)
                continue
            for n in range(FLOOD_EXTRA):
                status, response = await self._open(path, headers)
                if response is not None:
                    held.append(response)
                self.log.refusals.append(
                    Refusal(
                        attack=attack,
                        action=f"stream {cap + n + 1} of one user (cap {cap})",
                        booking_id=record.booking_id,
                        status=status,
                        code="",
                        started=started,
                        at=time.monotonic(),
                        wanted=(429,),
                    )
                )
            return held
        self.log.notes.append(
            f"stream flood on {record.booking_id}: could not hold {cap} streams in"
            f" {FLOOD_TRIES} tries (outages); no extra stream asked for"
        )
        return []

    async def _slot_back(self, path: str, headers: dict[str, str]) -> None:
        """Closed streams give their slots back: one opens again (the server may take a poll
        cycle to see the disconnects)."""
        deadline = time.monotonic() + SLOT_BACK_SECONDS
        status: int | None = None
        while time.monotonic() < deadline:
            status, response = await self._open(path, headers)
            if response is not None:
                await response.aclose()
                return
            await asyncio.sleep(1.0)
        raise FlowError(f"no stream slot back after closing: last answer {status}", status=status)

    async def replay(self, record: BookingRecord) -> None:
        record.inviter = False
        own = BookingRecord(
            index=record.index, kind=record.kind, amount=record.amount // 2 + 1, inviter=False
        )
        # The attacker's own booking is checked like any other, and a fault that cuts this
        # flow short cuts its flow short too (bench/chaos/due.py).
        self.w.extra.append(own)
        try:
            await self._replay(record, own)
        except BaseException as exc:
            own.error = own.error or f"{type(exc).__name__}: {exc}"[:300]
            raise

    async def _replay(self, record: BookingRecord, own: BookingRecord) -> None:
        attack = Kind.ADV_REPLAY
        victim = self.w.sender(record.index)
        thief = self.attacker(record)
        when = datetime.now(UTC) + LATER
        await self.allowed(
            attack, record, "fund the wallet", self.w.fund_usdc(victim, record.amount)
        )
        # Enough for both bookings: a revert must come from the authorization, not the funds.
        await self.allowed(
            attack,
            None,
            "fund the other wallet",
            self.w.fund_usdc(thief, record.amount + own.amount),
        )
        await self.allowed(
            attack,
            record,
            "marketplace creates",
            self.w.create(record, when, provider=self.provider),
        )
        await self.allowed(
            attack,
            own,
            "marketplace creates the other wallet's booking",
            self.w.create(own, when, wallet=thief.address, provider=self.provider),
        )
        as_thief = self.token(Role.CUSTOMER, thief.address)
        await self.refused(
            attack,
            "another customer asks for this booking's payment authorization",
            "POST",
            f"/bookings/{record.booking_id}/payment-authorization",
            as_thief,
            booking_id=record.booking_id,
            wanted=(403,),
        )
        theirs = await self.allowed(
            attack, record, "customer asks to pay", self.w.authorize_payment(record, victim.address)
        )
        mine = await self.allowed(
            attack, own, "other wallet asks to pay", self.w.authorize_payment(own, thief.address)
        )
        escrow = self.w.escrow
        their_auth = booking_authorization_from_api(theirs["authorization"])
        my_auth = booking_authorization_from_api(mine["authorization"])
        their_sig = bytes.fromhex(theirs["signature"][2:])
        my_sig = bytes.fromhex(mine["signature"][2:])
        await self.must_revert(
            attack,
            "the customer's authorization sent from another wallet",
            thief,
            escrow.encode_call("createAndPayBooking", their_auth.as_abi_tuple(), their_sig),
            "NotCustomer",
        )
        readdressed = dataclasses.replace(my_auth, booking_id=their_auth.booking_id)
        await self.must_revert(
            attack,
            "an authorization re-addressed to another booking",
            thief,
            escrow.encode_call("createAndPayBooking", readdressed.as_abi_tuple(), my_sig),
            "InvalidSignature",
        )
        await self.allowed(attack, own, "other wallet pays its own", self.w.pay(own, thief, mine))
        await self.must_revert(
            attack,
            "an authorization replayed after it was used",
            thief,
            escrow.encode_call("createAndPayBooking", my_auth.as_abi_tuple(), my_sig),
            "BookingAlreadyExists",
        )
        await self.allowed(attack, record, "customer pays", self.w.pay(record, victim, theirs))
        for booking, sender in ((record, victim), (own, thief)):
            await self.allowed(
                attack,
                booking,
                "booking becomes PAID",
                self.w.wait_status(booking, {"PAID"}, PATIENCE_SECONDS, wallet=sender.address),
            )
            await self.allowed(
                attack, booking, "customer completes", self.w.complete(booking, sender)
            )
            self.expect(attack, booking, sender.address, status="COMPLETED")

    async def cancel_then_pay(self, record: BookingRecord) -> None:
        attack = Kind.ADV_CANCEL_THEN_PAY
        # Soon: auto-completed within the run; the payment has to beat its expiry anyway.
        ahead = max(SOON, timedelta(seconds=self.w.config.create_ahead + 15))
        sender = await self.funded_booking(attack, record, ahead)
        customer = sender.address
        signed = await self.allowed(
            attack, record, "customer asks to pay", self.w.authorize_payment(record, customer)
        )
        answer = await self.allowed(
            attack,
            record,
            "customer cancels the unpaid booking",
            self.w.call(
                "POST",
                f"/bookings/{record.booking_id}/cancellation",
                (200,),
                customer,
                json={"reason": "chaos: cancel, then pay anyway"},
            ),
        )
        self.check(
            attack,
            record,
            "the cancellation waits for the live authorization (cancelsAt)",
            answer.get("status") == "PENDING_PAYMENT" and bool(answer.get("cancelsAt")),
            f"answered {answer.get('status')} cancelsAt {answer.get('cancelsAt')}",
        )
        await self.refused(
            attack,
            "customer asks for a new payment authorization after cancelling",
            "POST",
            f"/bookings/{record.booking_id}/payment-authorization",
            self.token(Role.CUSTOMER, customer),
            booking_id=record.booking_id,
        )
        await self.allowed(
            attack, record, "customer pays anyway", self.w.pay(record, sender, signed)
        )
        await self.allowed(
            attack,
            record,
            "the paid booking is PAID (then auto-completed)",
            self.w.wait_status(
                record, {"PAID", "PENDING_COMPLETION", "COMPLETED"}, PATIENCE_SECONDS
            ),
        )
        self.expect(attack, record, customer, status="COMPLETED", no_operator_refund=True)
