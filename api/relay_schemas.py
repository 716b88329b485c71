"""HTTP models of relayed payments (issue #19): the transfer the customer signs, and its relay.

The transfer is camelCase like the payment authorization it extends (wallet code reads it); the
request takes either case for the window; the relay's answer is snake_case like a report's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.schemas import PaymentAuthorizationPublic, Units, _Camel


class TransferAuthorizationPublic(_Camel):
    """USDC's ERC-3009 `ReceiveWithAuthorization` for the customer's wallet to sign."""

    typed_data: dict[str, Any] = Field(
        description="Full EIP-712 JSON for `eth_signTypedData_v4` (domain, types, primaryType, "
        "message): the token's domain, the booking's customer, the escrow, the amount, and the "
        "payment authorization's digest as nonce."
    )
    valid_after: Units = Field(description="Send back as issued with the signature.")
    valid_before: Units = Field(description="Send back as issued with the signature.")
    nonce: str = Field(description="bytes32: the payment authorization's EIP-712 digest.")


class RelayablePaymentAuthorizationPublic(PaymentAuthorizationPublic):
    """The payment authorization, and with `?relayed=true` the transfer to sign instead of paying."""

    transfer_authorization: TransferAuthorizationPublic | None = Field(
        default=None,
        description="Only with `relayed=true`: sign it and POST the signature to "
        "`/bookings/{id}/payment`; the platform sends the payment and pays its gas.",
    )


class RelayedPaymentCreate(BaseModel):
    """The customer's signature of `transferAuthorization.typedData`, with its window as issued."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes (r, s, v) as 0x-hex."
    )
    valid_after: Units
    valid_before: Units


class RelayedPaymentPublic(BaseModel):
    """The relay transaction: the booking becomes PAID when the chain confirms it."""

    tx_hash: str
    monitoring_until: datetime
    gas_used: int = Field(description="Gas the platform paid for (the customer paid none).")
    gas_cost_wei: Units
    replayed: bool = Field(description="True when this booking had been relayed already.")
