"""``Signer``: EIP-712 authorizations with a nonce reserved in Postgres, once per idempotency key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from chain.eip712 import (
    BookingAuthorization,
    Eip712Domain,
    TypedDataError,
    sign_booking_authorization,
    sign_cancellation_authorization,
)
from chain.eip712 import CancellationAuthorization as ChainCancellation
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

IDEMPOTENCY_FIELD = "idempotency_key"


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
        self, session: AsyncSession, booking_id: uuid.UUID, kind: NonceKind, key: str
    ) -> SignatureNonce | None:
        """The authorization an earlier attempt with this idempotency key already signed."""
        rows = await session.execute(
            select(SignatureNonce).where(
                SignatureNonce.booking_id == booking_id,
                SignatureNonce.kind == kind,
                SignatureNonce.authorization[IDEMPOTENCY_FIELD].astext == key,
                SignatureNonce.signature.is_not(None),
            )
        )
        return rows.scalars().first()

    @activity.defn(name=c.SIGN_PAYMENT_AUTHORIZATION)
    async def sign_payment_authorization(self, request: SignPaymentRequest) -> PaymentAuthorization:
        """A BookingAuthorization for the customer to submit to createAndPayBooking."""
        key = self._require_key()
        booking_id = _uuid(request.booking_id)
        expires_at = datetime.fromtimestamp(request.expiry, UTC)
        async with self._sessions.begin() as session:
            row = await self._existing(
                session, booking_id, NonceKind.BOOKING, request.idempotency_key
            )
            if row is not None and row.signature is not None:
                nonce, signature = row.nonce, row.signature
            else:
                nonce = await reserve_nonce(
                    session,
                    booking_id=booking_id,
                    kind=NonceKind.BOOKING,
                    expires_at=expires_at,
                    authorization={IDEMPOTENCY_FIELD: request.idempotency_key},
                )
                try:
                    auth = BookingAuthorization(
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
                    signed = sign_booking_authorization(self._domain, auth, key)
                except TypedDataError as exc:
                    raise ActivityRejected(f"cannot sign payment authorization: {exc}") from None
                signature = signed.signature
                await self._store(
                    session, nonce, request.idempotency_key, auth.as_message(), signature
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
        booking_id = _uuid(request.booking_id)
        expires_at = datetime.fromtimestamp(request.expiry, UTC)
        split = request.split
        async with self._sessions.begin() as session:
            row = await self._existing(
                session, booking_id, NonceKind.CANCELLATION, request.idempotency_key
            )
            if row is not None and row.signature is not None:
                nonce, signature = row.nonce, row.signature
            else:
                nonce = await reserve_nonce(
                    session,
                    booking_id=booking_id,
                    kind=NonceKind.CANCELLATION,
                    expires_at=expires_at,
                    authorization={IDEMPOTENCY_FIELD: request.idempotency_key},
                )
                try:
                    auth = ChainCancellation(
                        booking_id=request.chain_booking_id,
                        customer_amount=split.customer_amount,
                        provider_amount=split.provider_amount,
                        platform_amount=split.platform_amount,
                        inviter_amount=split.inviter_amount,
                        reason=request.reason,
                        expiry=request.expiry,
                        nonce=nonce,
                    )
                    signed = sign_cancellation_authorization(self._domain, auth, key)
                except TypedDataError as exc:
                    raise ActivityRejected(
                        f"cannot sign cancellation authorization: {exc}"
                    ) from None
                signature = signed.signature
                await self._store(
                    session, nonce, request.idempotency_key, auth.as_message(), signature
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
        stored = {
            IDEMPOTENCY_FIELD: idempotency_key,
            **{k: str(v) if isinstance(v, int) else v for k, v in message.items()},
        }
        await session.execute(
            update(SignatureNonce)
            .where(SignatureNonce.nonce == nonce)
            .values(authorization=stored, signature=signature)
        )


def _uuid(booking_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(booking_id)
    except ValueError:
        raise ActivityRejected(f"booking id {booking_id!r} is not a UUID") from None
