"""The chain's view of a payment authorization, for relaying it (issue #19).

The API builds the ERC-3009 typed data the customer signs from it, the relay activity the
transfer it redeems: both must derive the same transfer (its nonce is the authorization's
EIP-712 digest), so both call ``transfer_terms``. Pure: no I/O.
"""

from __future__ import annotations

from chain.eip712 import BookingAuthorization, Eip712Domain, ReceiveWithAuthorization
from chain.transfer_auth import receive_authorization
from workflows.types import PaymentAuthorization


def booking_authorization(auth: PaymentAuthorization) -> BookingAuthorization:
    """The signed ``BookingAuthorization`` the workflow handed out, as the contract reads it."""
    return BookingAuthorization(
        booking_id=auth.chain_booking_id,
        customer=auth.customer,
        provider=auth.provider,
        inviter=auth.inviter,
        amount=auth.amount,
        platform_fee_rate=auth.platform_fee_rate,
        inviter_fee_rate=auth.inviter_fee_rate,
        release_time=auth.release_time,
        expiry=auth.expiry,
        nonce=auth.nonce,
    )


def escrow_domain(auth: PaymentAuthorization) -> Eip712Domain:
    """The escrow's EIP-712 domain the authorization was signed in."""
    return Eip712Domain(chain_id=auth.chain_id, verifying_contract=auth.contract)


def transfer_terms(
    auth: PaymentAuthorization, *, valid_after: int = 0, valid_before: int | None = None
) -> ReceiveWithAuthorization:
    """The transfer that pays ``auth``: by default valid exactly as long as the authorization."""
    return receive_authorization(
        escrow_domain(auth),
        booking_authorization(auth),
        valid_after=valid_after,
        valid_before=valid_before,
    )
