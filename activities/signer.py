"""``Signer``: EIP-712 authorizations with a nonce reserved in Postgres, once per idempotency key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import structlog
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.booking_row import booking_uuid
from chain.eip712 import BookingAuthorization, Eip712Domain, TypedDataError
from chain.eip712 import CancellationAuthorization as ChainCancellation
from chain.errors import InvalidReason
from chain.reason_codes import onchain_reason
from chain.signing import sign_booking_authorization, sign_cancellation_authorization
from db.models import SignatureNonce
from db.nonces import reserve_nonce
from db.statuses import NonceKind
from workflows import constants as c
from workflows.errors import ActivityRejected
from workflows.types import (
    CancellationAuthorization,
    CancellationSplit,
    PaymentAuthorization,
    SignCancellationRequest,
    SignPaymentRequest,
)

log = structlog.get_logger(__name__)


class _Signable(Protocol):
    def as_message(self) -> dict[str, Any]: ...


_Struct = TypeVar("_Struct", bound=_Signable)

IDEMPOTENCY_FIELD = "idempotency_key"
NONCE_FIELD = "nonce"  # the EIP-712 field the row also holds in its own column


class Signer:
    """Holds the signer key (never logged) and the escrow's EIP-712 domain."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        signer_key: SecretStr | None,
        domain: Eip712Domain,
    ) -> None:
        self._sessions = session_factory
        self._key = signer_key
        self._domain = domain

    def __repr__(self) -> str:
        return f"Signer(contract={self._domain.verifying_contract}, chain={self._domain.chain_id})"

    def _require_key(self) -> SecretStr:
        if self._key is None:
            raise ActivityRejected(
                "no signer key configured (BOOKME_SIGNER_PRIVATE_KEY or _KEY_FILE)",
                error_type=c.SIGNER_UNAVAILABLE,
            )
        return self._key

    async def _existing(
        self,
        session: AsyncSession,
        booking_id: uuid.UUID,
        kind: NonceKind,
        key: str,
        terms: dict[str, Any],
    ) -> SignatureNonce | None:
        """The authorization an earlier attempt with this idempotency key signed for these very
        terms (the stored message but its nonce)."""
        rows = await session.execute(
            select(SignatureNonce).where(
                SignatureNonce.booking_id == booking_id,
                SignatureNonce.kind == kind,
                SignatureNonce.authorization.contains({IDEMPOTENCY_FIELD: key, **terms}),
                SignatureNonce.signature.is_not(None),
            )
        )
        return rows.scalars().first()

    async def _signed_once(
        self,
        booking_id: uuid.UUID,
        kind: NonceKind,
        idempotency_key: str,
        expires_at: datetime,
        build: Callable[[int], _Struct],
        sign: Callable[[_Struct], str],
    ) -> tuple[int, str]:
        """(nonce, signature) for this idempotency key and terms: the stored pair, or a new one.

        A new nonce is reserved and the signature stored in the same transaction, so an
        activity retried after a crash returns what it signed before. The stored pair is
        returned only for the very terms it signed: a workflow task run again after a lost one
        (its worker killed, Temporal down before the task completed) asks with the same key
        but a later expiry (or, for a cancellation, another split), and the old signature
        over other terms would revert on chain as InvalidSignature. It gets a nonce and
        signature of its own; the lost task's were never answered to anyone.
        """
        try:
            terms = _terms(build(0).as_message())
        except TypedDataError as exc:
            raise ActivityRejected(f"cannot sign {kind.value} authorization: {exc}") from None
        async with self._sessions.begin() as session:
            row = await self._existing(session, booking_id, kind, idempotency_key, terms)
            if row is not None and row.signature is not None:
                return row.nonce, row.signature
            nonce = await reserve_nonce(
                session,
                booking_id=booking_id,
                kind=kind,
                expires_at=expires_at,
                authorization={IDEMPOTENCY_FIELD: idempotency_key},
            )
            try:
                struct = build(nonce)
                signature = sign(struct)
            except TypedDataError as exc:
                raise ActivityRejected(f"cannot sign {kind.value} authorization: {exc}") from None
            await self._store(session, nonce, idempotency_key, struct.as_message(), signature)
            return nonce, signature

    @activity.defn(name=c.SIGN_PAYMENT_AUTHORIZATION)
    async def sign_payment_authorization(self, request: SignPaymentRequest) -> PaymentAuthorization:
        """A BookingAuthorization for the customer to submit to createAndPayBooking."""
        key = self._require_key()
        booking_id = booking_uuid(request.booking_id)
        expires_at = datetime.fromtimestamp(request.expiry, UTC)

        def build(nonce: int) -> BookingAuthorization:
            return BookingAuthorization(
                booking_id=request.chain_booking_id,
                customer=request.customer,
                provider=request.provider,
                inviter=request.inviter,
                amount=request.amount,
                platform_fee_rate=request.platform_fee_rate,
                inviter_fee_rate=request.inviter_fee_rate,
                release_time=request.release_time,
                expiry=request.expiry,
                nonce=nonce,
            )

        def sign(auth: BookingAuthorization) -> str:
            return sign_booking_authorization(self._domain, auth, key).signature

        nonce, signature = await self._signed_once(
            booking_id, NonceKind.BOOKING, request.idempotency_key, expires_at, build, sign
        )
        log.info("payment_authorization_signed", booking_id=request.booking_id, nonce=nonce)
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
            nonce=nonce,
            signature=signature,
            contract=self._domain.verifying_contract,
            chain_id=self._domain.chain_id,
            expires_at=expires_at,
        )

    @activity.defn(name=c.SIGN_CANCELLATION_AUTHORIZATION)
    async def sign_cancellation_authorization(
        self, request: SignCancellationRequest
    ) -> CancellationAuthorization:
        """A CancellationAuthorization (the policy's split) for cancelBooking."""
        key = self._require_key()
        booking_id = booking_uuid(request.booking_id)
        try:
            onchain_reason(request.reason)  # checked before a nonce is reserved
        except InvalidReason as exc:
            raise ActivityRejected(f"cannot sign cancellation authorization: {exc}") from None
        expires_at = datetime.fromtimestamp(request.expiry, UTC)
        split = request.split

        def build(nonce: int) -> ChainCancellation:
            return ChainCancellation(
                booking_id=request.chain_booking_id,
                customer_amount=split.customer_amount,
                provider_amount=split.provider_amount,
                platform_amount=split.platform_amount,
                inviter_amount=split.inviter_amount,
                reason=request.reason,
                expiry=request.expiry,
                nonce=nonce,
            )

        def sign(auth: ChainCancellation) -> str:
            return sign_cancellation_authorization(self._domain, auth, key).signature

        nonce, signature = await self._signed_once(
            booking_id, NonceKind.CANCELLATION, request.idempotency_key, expires_at, build, sign
        )
        log.info("cancellation_authorization_signed", booking_id=request.booking_id, nonce=nonce)
        return CancellationAuthorization(
            chain_booking_id=request.chain_booking_id,
            split=CancellationSplit(
                customer_amount=split.customer_amount,
                provider_amount=split.provider_amount,
                platform_amount=split.platform_amount,
                inviter_amount=split.inviter_amount,
            ),
            reason=request.reason,
            expiry=request.expiry,
            nonce=nonce,
            signature=signature,
            contract=self._domain.verifying_contract,
            chain_id=self._domain.chain_id,
            expires_at=expires_at,
            requested_by=request.requested_by,
        )

    @staticmethod
    async def _store(
        session: AsyncSession,
        nonce: int,
        idempotency_key: str,
        message: dict[str, Any],
        signature: str,
    ) -> None:
        stored = {IDEMPOTENCY_FIELD: idempotency_key, **_stored_form(message)}
        await session.execute(
            update(SignatureNonce)
            .where(SignatureNonce.nonce == nonce)
            .values(authorization=stored, signature=signature)
        )


def _stored_form(message: dict[str, Any]) -> dict[str, Any]:
    """The message as the authorization column keeps it (numbers as decimal strings: JSON)."""
    return {k: str(v) if isinstance(v, int) else v for k, v in message.items()}


def _terms(message: dict[str, Any]) -> dict[str, Any]:
    """What a signature covers besides its nonce, in stored form."""
    return {k: v for k, v in _stored_form(message).items() if k != NONCE_FIELD}
