"""HTTP request and response models (`XCreate` in, `XPublic` out); converted to and from the
workflow and ORM vocabularies in the routes, never shared with them.

Money crosses this edge as decimal strings (`"12.50"` USDC) and uint256 values as decimal
strings of base units, because JSON numbers lose precision past 2**53.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from api.money import AmountError, parse_amount
from api.text import StorableText
from workflows.types import BookingStatus

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MAX_SCHEDULE_AHEAD = timedelta(days=730)
MAX_ID_LENGTH = 128
MAX_REASON_LENGTH = 200
TX_HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"


def check_wallet(value: str) -> str:
    """Accept only a non-zero EIP-55 checksummed address (a typo'd wallet loses money)."""
    if not is_hex_address(value):
        raise ValueError("must be a 0x-prefixed 20-byte hex address")
    if not is_checksum_address(value):
        raise ValueError(f"must be EIP-55 checksummed (did you mean {to_checksum_address(value)}?)")
    if value == ZERO_ADDRESS:
        raise ValueError("must not be the zero address")
    return value


def check_amount(value: str) -> str:
    """A positive decimal string with at most 6 decimals (the cap is checked with settings)."""
    try:
        units = parse_amount(value)
    except AmountError as exc:
        raise ValueError(str(exc)) from None
    if units <= 0:
        raise ValueError("amount must be greater than 0")
    return value


Wallet = Annotated[
    str,
    AfterValidator(check_wallet),
    Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"], description="EIP-55 address"),
]
Amount = Annotated[
    str,
    AfterValidator(check_amount),
    Field(examples=["25.50"], description="USDC as a decimal string, at most 6 decimals"),
]
# Free text goes to Postgres (and Temporal) as is: StorableText refuses what it cannot store.
Identifier = Annotated[StorableText, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Reason = Annotated[StorableText, Field(min_length=1, max_length=MAX_REASON_LENGTH)]
TxHash = Annotated[str, Field(pattern=TX_HASH_PATTERN, examples=["0x" + "ab" * 32])]
Units = Annotated[str, Field(pattern=r"^[0-9]+$", description="uint256 as a decimal string")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


# --- bookings ---------------------------------------------------------------------------------


class BookingCreate(_In):
    """A new booking as the marketplace decided it: price, parties, inviter, appointment.

    Only the marketplace's service credential or an operator sends it; the customer then acts
    on the booking with a token whose wallet is `customer_wallet`.
    """

    service_id: Identifier
    provider_id: Identifier
    customer_id: Identifier = Field(description="The customer's user id (their token's `sub`).")
    customer_wallet: Wallet = Field(
        description="The customer's EIP-55 wallet: it pays, and their token must name it."
    )
    provider_wallet: Wallet = Field(description="The provider's EIP-55 payout wallet.")
    inviter_wallet: Wallet | None = Field(
        default=None, description="The inviter (referrer) paid the inviter fee; null for none."
    )
    amount: Amount
    scheduled_at: AwareDatetime = Field(description="Appointment time, with a UTC offset.")

    @model_validator(mode="after")
    def _distinct_parties(self) -> BookingCreate:
        if self.customer_wallet == self.provider_wallet:
            raise ValueError("customer_wallet and provider_wallet must differ")
        if self.inviter_wallet in (self.customer_wallet, self.provider_wallet):
            raise ValueError("inviter_wallet must differ from the customer and provider")
        return self

    @property
    def amount_units(self) -> int:
        """The amount in integer USDC base units."""
        return parse_amount(self.amount)

    def scheduled_at_utc(self) -> datetime:
        """The appointment in UTC, to the second (what the contract's release time uses)."""
        return self.scheduled_at.astimezone(UTC).replace(microsecond=0)


class PaymentSeenPublic(BaseModel):
    """A payment seen on chain and not yet confirmed: the booking is still PENDING_PAYMENT."""

    summary: str = Field(description='e.g. "payment seen, 1 of 2 confirmations"')
    tx_hash: str
    block_number: int
    confirmations: int = Field(description="Blocks on top of the payment's block when seen.")
    required: int = Field(description="Confirmations after which the booking is PAID.")
    seen_at: datetime


class BookingLive(BaseModel):
    """What the booking's workflow reports right now (absent when it cannot be reached)."""

    status: BookingStatus
    reason: str | None
    release_at: datetime
    payment_deadline: datetime
    monitoring_until: datetime | None
    monitored_tx_hash: str | None
    refund_tx_hash: str | None
    completion_tx_hash: str | None
    updated_at: datetime
    payment_seen: PaymentSeenPublic | None = Field(
        default=None,
        description="Set while a payment is seen but not yet confirmed; null once PAID or gone.",
    )


class BookingPublic(BaseModel):
    """A booking as stored in Postgres."""

    id: uuid.UUID
    chain_booking_id: str | None
    workflow_id: str | None
    status: BookingStatus
    status_reason: str | None
    service_id: str
    customer_id: str
    provider_id: str
    customer_wallet: str | None
    provider_wallet: str | None
    inviter_wallet: str | None
    amount: str | None = Field(description="USDC decimal string")
    amount_units: Units | None
    platform_fee_bps: int | None
    inviter_fee_bps: int | None
    scheduled_at: datetime
    blockchain_tx_hash: str | None
    blockchain_confirmed_at: datetime | None
    completion_tx_hash: str | None
    cancellation_tx_hash: str | None
    created_at: datetime
    updated_at: datetime


class BookingDetail(BookingPublic):
    """A booking with the live view of its workflow."""

    live: BookingLive | None = Field(
        description="Null when the workflow service is unreachable; the stored row still answers."
    )


class BookingPage(BaseModel):
    """One page of bookings, newest first."""

    items: list[BookingPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


class BookingEventPublic(BaseModel):
    """One audit-trail entry of a booking."""

    id: int
    booking_id: uuid.UUID
    kind: str
    from_status: BookingStatus | None
    to_status: BookingStatus | None
    reason: str | None
    actor: str
    chain_id: int | None
    tx_hash: str | None
    log_index: int | None
    details: dict[str, Any]
    created_at: datetime


class BookingEventPage(BaseModel):
    """Audit entries in order; `next_after` continues the list."""

    items: list[BookingEventPublic]
    next_after: int | None


# --- signed authorizations ------------------------------------------------------------------


class BookingAuthorizationMessage(_Camel):
    """The EIP-712 `BookingAuthorization` message, ready for `createAndPayBooking`."""

    booking_id: str
    customer: str
    provider: str
    inviter: str
    amount: Units
    platform_fee_rate: Units
    inviter_fee_rate: Units
    release_time: Units
    expiry: Units
    nonce: Units


class PaymentAuthorizationPublic(_Camel):
    """A signed payment authorization for the customer's wallet to submit."""

    authorization: BookingAuthorizationMessage
    signature: str
    contract: str
    chain_id: int
    expires_at: datetime


class CancellationAuthorizationMessage(_Camel):
    """The EIP-712 `CancellationAuthorization` message, ready for `cancelBooking`."""

    booking_id: str
    customer_amount: Units
    provider_amount: Units
    platform_amount: Units
    inviter_amount: Units
    reason: str
    expiry: Units
    nonce: Units


class CancellationCreate(_In):
    """Why the booking is being cancelled."""

    reason: Reason


class CancellationPublic(_Camel):
    """The outcome: cancelled (unpaid), a time it will be, or a signed authorization to submit."""

    status: BookingStatus
    authorization: CancellationAuthorizationMessage | None = None
    signature: str | None = None
    contract: str | None = None
    chain_id: int | None = None
    expires_at: datetime | None = None
    cancels_at: datetime | None = Field(
        default=None,
        description="Unpaid booking with a payment authorization still valid, or a payment "
        "mined and not yet confirmed: it becomes CANCELLED from this time, once the chain shows "
        "no payment and the authorization can no longer be used (a payment confirmed first "
        "pays the booking instead).",
    )


class TransactionKindName(StrEnum):
    PAYMENT = "payment"
    COMPLETION = "completion"
    CANCELLATION = "cancellation"


class TransactionReportCreate(_In):
    """A transaction the caller's wallet submitted for this booking."""

    tx_hash: TxHash
    kind: TransactionKindName


class TransactionReportPublic(BaseModel):
    """The accepted report and until when the booking watches the chain for it."""

    tx_hash: str
    kind: TransactionKindName
    monitoring_until: datetime


class EmergencyCancelCreate(_In):
    """Why an operator refunds the booking in full."""

    reason: Reason


class EmergencyCancelPublic(BaseModel):
    """The refund transaction the operator key sent."""

    status: BookingStatus
    tx_hash: str


# --- health -----------------------------------------------------------------------------------


class CheckResult(BaseModel):
    """One dependency's state: `code` is short and stable (`ok`, `timeout`, `paused`...)."""

    ok: bool
    code: str = Field(examples=["ok", "timeout", "error", "paused", "lagging", "low_balance"])
    detail: str
    critical: bool = Field(
        default=False, description="Whether this check failing makes the service unavailable."
    )
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class HealthReport(BaseModel):
    """`ok`, `degraded` (a non-critical check fails: still serving) or `unavailable`; `checks`
    is empty when the caller may not see the details (BOOKME_OBSERVABILITY_RESTRICTED)."""

    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, CheckResult] = Field(default_factory=dict)


class Liveness(BaseModel):
    """The process is up; nothing else is checked."""

    status: Literal["ok"] = "ok"


def schedule_problem(scheduled_at: datetime, now: datetime) -> str | None:
    """Why `scheduled_at` is unacceptable at `now`, or None."""
    if scheduled_at <= now:
        return "must be in the future"
    if scheduled_at - now > MAX_SCHEDULE_AHEAD:
        return f"must be within {MAX_SCHEDULE_AHEAD.days} days"
    return None
