"""Signer against real Postgres: DB-reserved nonces, valid signatures, one per idempotency key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import Signer
from chain.eip712 import CancellationAuthorization, Eip712Domain
from chain.signing import booking_typed_data, cancellation_typed_data
from db.models import SignatureNonce
from tests.activities.conftest import ESCROW, SIGNER_ADDRESS
from tests.workflows.fakes import make_booking, onchain_cancellation
from workflows.relay_terms import booking_authorization
from workflows.types import (
    CancellationSplit,
    PartyRole,
    SignCancellationRequest,
    SignPaymentRequest,
)

pytestmark = pytest.mark.integration
DOMAIN = Eip712Domain(chain_id=31337, verifying_contract=ESCROW)


def _payment_request(booking, key: str) -> SignPaymentRequest:
    return SignPaymentRequest(
        booking_id=booking.booking_id,
        idempotency_key=key,
        chain_booking_id=booking.chain_booking_id,
        customer=booking.customer_wallet,
        provider=booking.provider_wallet,
        inviter=booking.inviter_or_zero,
        amount=booking.amount_units,
        platform_fee_rate=1000,
        inviter_fee_rate=0,
        release_time=int((booking.scheduled_at + timedelta(hours=2)).timestamp()),
        expiry=int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    )


async def test_payment_authorization_recovers_to_the_signer_and_is_idempotent(
    store, signer, sessions
):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    request = _payment_request(booking, f"{booking.booking_id}:payment:1")
    first = await env.run(signer.sign_payment_authorization, request)
    again = await env.run(signer.sign_payment_authorization, request)  # retried activity
    assert again == first
    other = await env.run(
        signer.sign_payment_authorization,
        _payment_request(booking, f"{booking.booking_id}:payment:2"),
    )
    assert other.nonce != first.nonce

    assert _payment_signer(first) == SIGNER_ADDRESS
    assert first.contract == ESCROW
    async with sessions() as session:
        rows = (
            (
                await session.execute(
                    select(SignatureNonce).where(
                        SignatureNonce.booking_id == uuid.UUID(booking.booking_id)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert sorted(r.nonce for r in rows) == sorted([first.nonce, other.nonce])
    assert all(r.signature for r in rows)


def _payment_signer(auth) -> str:
    """The address a payment authorization's signature recovers to, over its own fields."""
    signable = encode_typed_data(
        full_message=booking_typed_data(DOMAIN, booking_authorization(auth))
    )
    return str(Account.recover_message(signable, signature=auth.signature))


def _cancellation_signer(auth) -> str:
    signable = encode_typed_data(
        full_message=cancellation_typed_data(DOMAIN, onchain_cancellation(auth))
    )
    return str(Account.recover_message(signable, signature=auth.signature))


async def test_a_key_asked_again_with_other_terms_gets_a_signature_over_those_terms(store, signer):
    # A workflow task lost after its signing (worker killed, Temporal down) runs again with the
    # same idempotency key and a later expiry; chaos seed 548947749 saw the stored signature
    # come back over the new expiry, and six honest payments revert with InvalidSignature.
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    key = f"{booking.booking_id}:payment:1"
    lost = _payment_request(booking, key)
    rerun = SignPaymentRequest(**{**lost.__dict__, "expiry": lost.expiry + 95})
    first = await env.run(signer.sign_payment_authorization, lost)
    second = await env.run(signer.sign_payment_authorization, rerun)
    assert second.expiry == rerun.expiry
    assert _payment_signer(first) == SIGNER_ADDRESS
    assert _payment_signer(second) == SIGNER_ADDRESS
    assert second.nonce != first.nonce
    # Each terms' retry still gets back what was signed for them.
    assert await env.run(signer.sign_payment_authorization, rerun) == second
    assert await env.run(signer.sign_payment_authorization, lost) == first

    def cancellation(customer_amount: int) -> SignCancellationRequest:
        return SignCancellationRequest(
            booking_id=booking.booking_id,
            idempotency_key=f"{booking.booking_id}:cancel:1",
            chain_booking_id=booking.chain_booking_id,
            split=CancellationSplit(
                customer_amount=customer_amount,
                provider_amount=100_000_000 - customer_amount,
                platform_amount=0,
                inviter_amount=0,
            ),
            reason="customer_cancelled",
            expiry=lost.expiry,
            requested_by=PartyRole.CUSTOMER,
        )

    # The re-run task's clock fell past a policy boundary: another split, same key.
    full = await env.run(signer.sign_cancellation_authorization, cancellation(100_000_000))
    half = await env.run(signer.sign_cancellation_authorization, cancellation(50_000_000))
    assert half.split.customer_amount == 50_000_000
    assert _cancellation_signer(full) == SIGNER_ADDRESS
    assert _cancellation_signer(half) == SIGNER_ADDRESS
    assert half.nonce != full.nonce


async def test_cancellation_authorization_signs_the_split(store, signer):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    split = CancellationSplit(
        customer_amount=60_000_000, provider_amount=40_000_000, platform_amount=0, inviter_amount=0
    )
    result = await env.run(
        signer.sign_cancellation_authorization,
        SignCancellationRequest(
            booking_id=booking.booking_id,
            idempotency_key=f"{booking.booking_id}:cancel:1",
            chain_booking_id=booking.chain_booking_id,
            split=split,
            reason="customer_cancelled",
            expiry=int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
            requested_by=PartyRole.CUSTOMER,
        ),
    )
    assert result.split == split
    auth = CancellationAuthorization(
        booking_id=booking.chain_booking_id,
        customer_amount=60_000_000,
        provider_amount=40_000_000,
        platform_amount=0,
        inviter_amount=0,
        reason="customer_cancelled",
        expiry=result.expiry,
        nonce=result.nonce,
    )
    signable = encode_typed_data(full_message=cancellation_typed_data(DOMAIN, auth))
    assert Account.recover_message(signable, signature=result.signature) == SIGNER_ADDRESS


async def test_missing_key_and_bad_input_are_non_retryable(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    keyless = Signer(sessions, signer_key=None, domain=DOMAIN)
    with pytest.raises(ApplicationError) as info:
        await env.run(keyless.sign_payment_authorization, _payment_request(booking, "k"))
    assert info.value.type == "SignerUnavailable"
    assert info.value.non_retryable
    signer = Signer(
        sessions,
        signer_key=SecretStr("0x" + "11" * 32),
        domain=DOMAIN,
    )
    bad = _payment_request(booking, "k2")
    bad = SignPaymentRequest(**{**bad.__dict__, "customer": "not-an-address"})
    with pytest.raises(ApplicationError) as info:
        await env.run(signer.sign_payment_authorization, bad)
    assert info.value.type == "InvalidActivityInput"
    assert "11" * 32 not in repr(signer)
    assert "11" * 32 not in str(info.value)


async def test_a_cancellation_reason_that_is_not_a_code_is_refused_before_a_nonce(
    store, signer, sessions
):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    request = SignCancellationRequest(
        booking_id=booking.booking_id,
        idempotency_key=f"{booking.booking_id}:cancel:free-text",
        chain_booking_id=booking.chain_booking_id,
        split=CancellationSplit(
            customer_amount=100_000_000, provider_amount=0, platform_amount=0, inviter_amount=0
        ),
        reason="my dentist appointment moved",
        expiry=int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
        requested_by=PartyRole.CUSTOMER,
    )
    with pytest.raises(ApplicationError, match="not an on-chain reason code") as info:
        await env.run(signer.sign_cancellation_authorization, request)
    assert info.value.non_retryable
    async with sessions() as session:
        nonces = await session.scalars(
            select(SignatureNonce).where(SignatureNonce.booking_id == uuid.UUID(booking.booking_id))
        )
        assert list(nonces) == []
