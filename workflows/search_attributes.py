"""Custom search attributes the booking workflows set, registered by every Temporal server we start."""

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

BOOKING_ID = SearchAttributeKey.for_keyword("BookingId")
BOOKING_STATUS = SearchAttributeKey.for_keyword("BookingStatus")
CUSTOMER_WALLET = SearchAttributeKey.for_keyword("CustomerWallet")
PROVIDER_WALLET = SearchAttributeKey.for_keyword("ProviderWallet")
CHAIN_BOOKING_ID = SearchAttributeKey.for_keyword("ChainBookingId")
# int64 is ample: the API caps a booking far below 9.2e12 USDC.
AMOUNT_UNITS = SearchAttributeKey.for_int("AmountUnits")
SCHEDULED_AT = SearchAttributeKey.for_datetime("ScheduledAt")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    BOOKING_ID,
    BOOKING_STATUS,
    CUSTOMER_WALLET,
    PROVIDER_WALLET,
    CHAIN_BOOKING_ID,
    AMOUNT_UNITS,
    SCHEDULED_AT,
)

__all__ = [
    "ALL_KEYS",
    "AMOUNT_UNITS",
    "BOOKING_ID",
    "BOOKING_STATUS",
    "CHAIN_BOOKING_ID",
    "CUSTOMER_WALLET",
    "PROVIDER_WALLET",
    "SCHEDULED_AT",
    "SearchAttributePair",
    "TypedSearchAttributes",
]
