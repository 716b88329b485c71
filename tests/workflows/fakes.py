"""Fake activities registered under the real activity names, plus event builders."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity

from bookme.settings import default_booking_policy
from chain.eip712 import CancellationAuthorization as ChainCancellation
from chain.eip712 import chain_booking_id
from workflows import constants as c
from workflows.errors import ActivityRejected
from workflows.event_checks import expected_fees
from workflows.types import (
    BookingInput,
    CancellationAuthorization,
    CancellationFields,
    ChainEventKind,
    ChainEventSignal,
    ChainObservation,
    CompletionFields,
    EventIdentity,
    ObserveRequest,
    OnChainStatus,
    OperatorTxRequest,
    OperatorTxResult,
    OrphanRecord,
    PaymentAuthorization,
    PaymentFields,
    SignCancellationRequest,
    SignPaymentRequest,
    TransitionRecord,
    TxStatus,
)

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
INVITER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
OPERATOR = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

_counter = itertools.count(1)


def tx_hash() -> str:
    return "0x" + uuid.uuid4().hex * 2


def make_booking(
    *,
    amount: int = 100_000_000,
    scheduled_in: timedelta = timedelta(days=3),
    inviter: str | None = None,
    now: datetime | None = None,
    **policy: int,
) -> BookingInput:
    booking_id = str(uuid.uuid4())
    return BookingInput(
        booking_id=booking_id,
        chain_booking_id=chain_booking_id(booking_id),
        customer_wallet=CUSTOMER,
        provider_wallet=PROVIDER,
        inviter_wallet=inviter,
        amount_units=amount,
        scheduled_at=(now or datetime.now(UTC)) + scheduled_in,
        service_id="service-1",
        customer_id="customer-1",
        provider_id="provider-1",
        policy=default_booking_policy(**policy),
    )


def _identity(tx: str | None = None, log_index: int = 0) -> EventIdentity:
    block = next(_counter)
    return EventIdentity(
        chain_id=31337,
        tx_hash=tx or tx_hash(),
        log_index=log_index,
        block_number=1000 + block,
        block_hash="0x" + f"{block:064x}",
    )


def payment_event(booking: BookingInput, *, tx: str | None = None, **changes) -> ChainEventSignal:
    rates = booking.policy.fee_rates(has_inviter=booking.inviter_wallet is not None)
    fields: dict[str, Any] = {
        "customer": booking.customer_wallet,
        "provider": booking.provider_wallet,
        "inviter": booking.inviter_or_zero,
        "amount": booking.amount_units,
        "platform_fee_rate": rates[0],
        "inviter_fee_rate": rates[1],
    }
    fields.update(changes)
    return ChainEventSignal(
        kind=ChainEventKind.PAYMENT,
        identity=_identity(tx),
        chain_booking_id=booking.chain_booking_id,
        payment=PaymentFields(**fields),
    )


def completion_event(booking: BookingInput, *, tx: str | None = None) -> ChainEventSignal:
    platform_fee, inviter_fee, provider_amount = expected_fees(booking)
    return ChainEventSignal(
        kind=ChainEventKind.COMPLETION,
        identity=_identity(tx, log_index=2),
        chain_booking_id=booking.chain_booking_id,
        completion=CompletionFields(
            provider=booking.provider_wallet,
            provider_amount=provider_amount,
            platform_fee=platform_fee,
            inviter_fee=inviter_fee,
        ),
    )


def cancellation_event(
    booking: BookingInput,
    *,
    customer: int | None = None,
    provider: int = 0,
    by: str = OPERATOR,
    tx: str | None = None,
) -> ChainEventSignal:
    return ChainEventSignal(
        kind=ChainEventKind.CANCELLATION,
        identity=_identity(tx, log_index=1),
        chain_booking_id=booking.chain_booking_id,
        cancellation=CancellationFields(
            cancelled_by=by,
            customer_amount=booking.amount_units - provider if customer is None else customer,
            provider_amount=provider,
            platform_amount=0,
            inviter_amount=0,
            reason="test",
        ),
    )


@dataclass(eq=False)  # identity, not value: each test's worker must call its own fakes
class FakeActivities:
    """Records what the workflow asked for; the chain's answers are set by each test."""

    records: list[BookingInput] = field(default_factory=list)
    transitions: list[TransitionRecord] = field(default_factory=list)
    orphan_records: list[OrphanRecord] = field(default_factory=list)
    payment_signings: list[SignPaymentRequest] = field(default_factory=list)
    cancellation_signings: list[SignCancellationRequest] = field(default_factory=list)
    observations: list[ObserveRequest] = field(default_factory=list)
    completions_sent: list[OperatorTxRequest] = field(default_factory=list)
    refunds_sent: list[OperatorTxRequest] = field(default_factory=list)
    # What polling sees: events confirmed so far, the contract's status, a tx verdict.
    chain_events: list[ChainEventSignal] = field(default_factory=list)
    onchain_status: OnChainStatus = OnChainStatus.NONE
    tx_status: TxStatus = TxStatus.UNKNOWN
    complete_fails: bool = False
    refuse_record: bool = False  # Postgres refuses the booking's data for good (poison input)
    on_observe: Callable[[ObserveRequest], None] | None = None
    # The chain's clock (its newest confirmed block's timestamp), for reads that ask for it;
    # None: the workflow's own clock, as if the chain kept it.
    chain_clock: int | None = None

    def actions(self) -> list[str]:
        return [t.action for t in self.transitions]

    @activity.defn(name=c.RECORD_BOOKING)
    async def record_booking(self, booking: BookingInput) -> None:
        self.records.append(booking)
        if self.refuse_record:
            raise ActivityRejected("Postgres cannot store this booking (SQLSTATE 22021)")

    @activity.defn(name=c.APPLY_TRANSITION)
    async def apply_transition(self, record: TransitionRecord) -> None:
        if any(t.dedupe_key == record.dedupe_key for t in self.transitions):
            return
        self.transitions.append(record)

    @activity.defn(name=c.RECORD_ORPHAN)
    async def record_orphan(self, record: OrphanRecord) -> None:
        self.orphan_records.append(record)

    @activity.defn(name=c.SIGN_PAYMENT_AUTHORIZATION)
    async def sign_payment_authorization(self, request: SignPaymentRequest) -> PaymentAuthorization:
        self.payment_signings.append(request)
        return PaymentAuthorization(
            chain_booking_id=request.chain_booking_id,
            customer=request.customer,
            provider=request.provider,
            inviter=request.inviter,
            amount=request.amount,
            platform_fee_rate=request.platform_fee_rate,
            inviter_fee_rate=request.inviter_fee_rate,
            release_time=request.release_time,
            expiry=request.expiry,
            nonce=len(self.payment_signings),
            signature="0x" + "aa" * 65,
            contract=ESCROW,
            chain_id=31337,
            expires_at=datetime.fromtimestamp(request.expiry, UTC),
        )

    @activity.defn(name=c.SIGN_CANCELLATION_AUTHORIZATION)
    async def sign_cancellation_authorization(
        self, request: SignCancellationRequest
    ) -> CancellationAuthorization:
        self.cancellation_signings.append(request)
        return CancellationAuthorization(
            chain_booking_id=request.chain_booking_id,
            split=request.split,
            reason=request.reason,
            expiry=request.expiry,
            nonce=100 + len(self.cancellation_signings),
            signature="0x" + "bb" * 65,
            contract=ESCROW,
            chain_id=31337,
            expires_at=datetime.fromtimestamp(request.expiry, UTC),
            requested_by=request.requested_by,
        )

    @activity.defn(name=c.OBSERVE_BOOKING)
    async def observe_booking(self, request: ObserveRequest) -> ChainObservation:
        self.observations.append(request)
        if self.on_observe is not None:
            self.on_observe(request)
        return ChainObservation(
            events=list(self.chain_events),
            tx_status=self.tx_status if request.tx_hash else TxStatus.UNKNOWN,
            onchain_status=self.onchain_status,
            final_block_timestamp=self.chain_clock if request.chain_time else None,
        )

    @activity.defn(name=c.SEND_COMPLETE_SERVICE)
    async def send_complete_service(self, request: OperatorTxRequest) -> OperatorTxResult:
        self.completions_sent.append(request)
        if self.complete_fails:
            raise ActivityRejected("BookingNotPaid", error_type=c.CHAIN_REJECTED)
        return OperatorTxResult(tx_hash="0x" + "c0" * 32)

    @activity.defn(name=c.SEND_EMERGENCY_CANCEL)
    async def send_emergency_cancel(self, request: OperatorTxRequest) -> OperatorTxResult:
        self.refunds_sent.append(request)
        return OperatorTxResult(tx_hash="0x" + "e0" * 32)

    def all(self) -> list[Callable[..., object]]:
        return [
            self.record_booking,
            self.apply_transition,
            self.record_orphan,
            self.sign_payment_authorization,
            self.sign_cancellation_authorization,
            self.observe_booking,
            self.send_complete_service,
            self.send_emergency_cancel,
        ]


def onchain_cancellation(auth: CancellationAuthorization) -> ChainCancellation:
    """The signed cancellation as the contract reads it (what ``cancelBooking`` is sent)."""
    return ChainCancellation(
        booking_id=auth.chain_booking_id,
        customer_amount=auth.split.customer_amount,
        provider_amount=auth.split.provider_amount,
        platform_amount=auth.split.platform_amount,
        inviter_amount=auth.split.inviter_amount,
        reason=auth.reason,
        expiry=auth.expiry,
        nonce=auth.nonce,
    )
