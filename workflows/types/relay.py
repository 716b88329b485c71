"""Relayed payments (issue #19): the customer signs one ERC-3009 transfer, the operator sends it.

The update's request and answer, and the relay activity's input and output. The transfer
signature pays exactly the booking authorization it was issued with (its nonce is that
authorization's EIP-712 digest), so the activity gets that authorization along.
"""

from dataclasses import dataclass
from datetime import datetime

from workflows.types.updates import PaymentAuthorization


@dataclass(frozen=True, kw_only=True)
class RelayPaymentRequest:
    """The customer's ``ReceiveWithAuthorization`` signature, with the window it was issued with."""

    caller_wallet: str
    signature: str  # 0x-hex, 65 bytes (r, s, v)
    valid_after: int
    valid_before: int


@dataclass(frozen=True, kw_only=True)
class RelayedPayment:
    """The one relay of a booking; a repeated request gets it again with ``replayed``."""

    tx_hash: str
    monitoring_until: datetime
    gas_used: int
    gas_cost_wei: int
    replayed: bool = False


@dataclass(frozen=True, kw_only=True)
class RelayTxRequest:
    """What the relay activity sends: ``authorization`` paid with the customer's transfer."""

    booking_id: str
    authorization: PaymentAuthorization
    signature: str
    valid_after: int
    valid_before: int


@dataclass(frozen=True, kw_only=True)
class RelayTxResult:
    """The mined relay transaction and what its gas cost the platform (wei)."""

    tx_hash: str
    gas_used: int
    gas_cost_wei: int
