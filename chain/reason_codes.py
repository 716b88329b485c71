"""The short codes that go on chain as a cancellation's or refund's ``reason``.

The chain is public and permanent, so free text (a customer's words, an operator's name, an
incident note) stays in Postgres and the workflow history; the contract only ever sees one of
these codes. The contract refuses a reason longer than ``MAX_ONCHAIN_REASON_BYTES``.
"""

from __future__ import annotations

from enum import StrEnum

from chain.errors import InvalidReason

MAX_ONCHAIN_REASON_BYTES = 32


class OnChainReason(StrEnum):
    CUSTOMER_CANCELLED = "customer_cancelled"
    PROVIDER_CANCELLED = "provider_cancelled"
    OPERATOR_CANCELLED = "operator_cancelled"
    EMERGENCY_REFUND = "emergency_refund"  # an operator's emergency refund
    ESCALATED_REFUND = "escalated_refund"  # the workflow refunds a contradiction or late payment
    REFUND_RESENT = "refund_resent"  # a reorg removed an earlier refund, or a redrive
    ORPHAN_REFUND = "orphan_refund"  # a payment for a booking this service never created


def onchain_reason(value: str) -> OnChainReason:
    """``value`` as a reason code, or `InvalidReason`: what senders and signers check last."""
    try:
        return OnChainReason(value)
    except ValueError:
        # Never echo the refused text whole: it may be the very free text kept off chain.
        shown = value[:20] + ("..." if len(value) > 20 else "")
        raise InvalidReason(
            f"{shown!r} is not an on-chain reason code (one of {', '.join(OnChainReason)});"
            " free text stays in Postgres"
        ) from None


def cancellation_reason(role: str) -> OnChainReason:
    """The code for a signed cancellation requested by ``role`` (customer/provider/operator)."""
    return OnChainReason(f"{role}_cancelled")
