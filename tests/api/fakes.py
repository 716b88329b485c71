"""Activities for the real BookingWorkflow in API tests: real Postgres writes and real EIP-712
signatures, no chain (the chain is driven by the test through the listener's signals)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from chain.eip712 import (
    BookingAuthorization,
    CancellationAuthorization,
    Eip712Domain,
    sign_booking_authorization,
    sign_cancellation_authorization,
)
from db.models import Booking, BookingEvent
from workflows import constants as c
from workflows.types import (
    BookingInput,
    BookingStatus,
    ChainObservation,
    ObserveRequest,
    OnChainStatus,
    OperatorTxRequest,
    OperatorTxResult,
    PaymentAuthorization,
    SignCancellationRequest,
    SignPaymentRequest,
    TransitionRecord,
    TxStatus,
)
from workflows.types import CancellationAuthorization as WfCancellationAuthorization

# anvil's published account #1 key: a test signer only.
SIGNER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SIGNER_ADDRESS = Account.from_key(SIGNER_KEY).address
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337


class DbActivities:
    """record_booking / apply_transition / signing / observing / sending, as the worker would."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.domain = Eip712Domain(chain_id=CHAIN_ID, verifying_contract=CONTRACT)
        self.nonce = 0
        self.sent = 0

    @activity.defn(name=c.RECORD_BOOKING)
    async def record_booking(self, booking: BookingInput) -> None:
        platform, inviter = booking.policy.fee_rates(has_inviter=booking.inviter_wallet is not None)
        booking_id = uuid.UUID(booking.booking_id)
        async with self.sessions.begin() as session:
            inserted = await session.execute(
                insert(Booking)
                .values(
                    id=booking_id,
                    service_id=booking.service_id,
                    customer_id=booking.customer_id,
                    provider_id=booking.provider_id,
                    customer_wallet=booking.customer_wallet,
                    provider_wallet=booking.provider_wallet,
                    inviter_wallet=booking.inviter_wallet,
                    amount_units=booking.amount_units,
                    scheduled_at=booking.scheduled_at,
                    status=BookingStatus.PENDING_PAYMENT.value,
                    blockchain_booking_id=booking.chain_booking_id,
                    platform_fee_bps=platform,
                    inviter_fee_bps=inviter,
                    workflow_id=c.booking_workflow_id(booking.booking_id),
                )
                .on_conflict_do_nothing()
                .returning(Booking.id)
            )
            if inserted.scalar_one_or_none() is not None:
                session.add(
                    BookingEvent(
                        booking_id=booking_id,
                        to_status=BookingStatus.PENDING_PAYMENT.value,
                        kind="created",
                        dedupe_key="created",
                    )
                )

    @activity.defn(name=c.APPLY_TRANSITION)
    async def apply_transition(self, record: TransitionRecord) -> None:
        booking_id = uuid.UUID(record.booking_id)
        async with self.sessions.begin() as session:
            await session.execute(
                update(Booking)
                .where(Booking.id == booking_id)
                .values(status=record.to_status.value, status_reason=record.reason)
            )
            await session.execute(
                insert(BookingEvent)
                .values(
                    booking_id=booking_id,
                    from_status=record.from_status.value,
                    to_status=record.to_status.value,
                    kind=record.action,
                    reason=record.reason,
                    tx_hash=record.tx_hash,
                    dedupe_key=record.dedupe_key,
                )
                .on_conflict_do_nothing()
            )

    @activity.defn(name=c.SIGN_PAYMENT_AUTHORIZATION)
    async def sign_payment_authorization(self, req: SignPaymentRequest) -> PaymentAuthorization:
        self.nonce += 1
        auth = BookingAuthorization(
            booking_id=req.chain_booking_id,
            customer=req.customer,
            provider=req.provider,
            inviter=req.inviter,
            amount=req.amount,
            platform_fee_rate=req.platform_fee_rate,
            inviter_fee_rate=req.inviter_fee_rate,
            release_time=req.release_time,
            expiry=req.expiry,
            nonce=self.nonce,
        )
        signed = sign_booking_authorization(self.domain, auth, SIGNER_KEY)
        return PaymentAuthorization(
            chain_booking_id=req.chain_booking_id,
            customer=req.customer,
            provider=req.provider,
            inviter=req.inviter,
            amount=req.amount,
            platform_fee_rate=req.platform_fee_rate,
            inviter_fee_rate=req.inviter_fee_rate,
            release_time=req.release_time,
            expiry=req.expiry,
            nonce=self.nonce,
            signature=signed.signature,
            contract=CONTRACT,
            chain_id=CHAIN_ID,
            expires_at=datetime.fromtimestamp(req.expiry, UTC),
        )

    @activity.defn(name=c.SIGN_CANCELLATION_AUTHORIZATION)
    async def sign_cancellation_authorization(
        self, req: SignCancellationRequest
    ) -> WfCancellationAuthorization:
        self.nonce += 1
        auth = CancellationAuthorization(
            booking_id=req.chain_booking_id,
            customer_amount=req.split.customer_amount,
            provider_amount=req.split.provider_amount,
            platform_amount=req.split.platform_amount,
            inviter_amount=req.split.inviter_amount,
            reason=req.reason,
            expiry=req.expiry,
            nonce=self.nonce,
        )
        signed = sign_cancellation_authorization(self.domain, auth, SIGNER_KEY)
        return WfCancellationAuthorization(
            chain_booking_id=req.chain_booking_id,
            split=req.split,
            reason=req.reason,
            expiry=req.expiry,
            nonce=self.nonce,
            signature=signed.signature,
            contract=CONTRACT,
            chain_id=CHAIN_ID,
            expires_at=datetime.fromtimestamp(req.expiry, UTC),
            requested_by=req.requested_by,
        )

    @activity.defn(name=c.OBSERVE_BOOKING)
    async def observe_booking(self, req: ObserveRequest) -> ChainObservation:
        return ChainObservation(
            events=[], tx_status=TxStatus.UNKNOWN, onchain_status=OnChainStatus.NONE
        )

    @activity.defn(name=c.SEND_EMERGENCY_CANCEL)
    async def send_emergency_cancel(self, req: OperatorTxRequest) -> OperatorTxResult:
        self.sent += 1
        return OperatorTxResult(tx_hash="0x" + f"{self.sent:064x}")

    @activity.defn(name=c.SEND_COMPLETE_SERVICE)
    async def send_complete_service(self, req: OperatorTxRequest) -> OperatorTxResult:
        self.sent += 1
        return OperatorTxResult(tx_hash="0x" + f"{self.sent:064x}")

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_booking,
            self.apply_transition,
            self.sign_payment_authorization,
            self.sign_cancellation_authorization,
            self.observe_booking,
            self.send_emergency_cancel,
            self.send_complete_service,
        ]
