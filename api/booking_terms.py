"""Who decides a booking's terms: the marketplace (its service credential) or an operator.

The price, the provider's payout wallet, the inviter and which customer (user id and wallet)
the booking is for are the marketplace's data. A party to the booking choosing them could book
a 100 USDC service for 1, pay an accomplice's wallet, or name a wallet of its own as inviter
and take back the inviter fee. So `POST /bookings` takes them only from a trusted caller, and a
customer who sends them is told which ones were refused, never silently overruled.
"""

from __future__ import annotations

from api.auth import Principal
from api.errors import ErrorDetail, Forbidden

# `BookingCreate` fields only the marketplace decides (tests check they are its fields).
MARKETPLACE_FIELDS = (
    "amount",
    "provider_wallet",
    "inviter_wallet",
    "customer_id",
    "customer_wallet",
)

CREATED_BY_THE_MARKETPLACE = (
    "bookings are created by the marketplace (its service credential) or an operator, "
    "which decide the price, the provider's wallet, the inviter and the customer"
)


def creation_refusal(caller: Principal, body: object) -> Forbidden | None:
    """Why `caller` may not create a booking with `body` (the raw JSON), or None if it may."""
    if caller.decides_booking_terms:
        return None
    sent = [name for name in MARKETPLACE_FIELDS if isinstance(body, dict) and name in body]
    if not sent:
        return Forbidden(
            f"{CREATED_BY_THE_MARKETPLACE}; a {caller.role} cannot create one",
            code="marketplace_only",
        )
    return Forbidden(
        f"a {caller.role} cannot set {', '.join(sent)}: {CREATED_BY_THE_MARKETPLACE}",
        code="marketplace_only",
        details=[
            ErrorDetail(
                field=f"body.{name}", message=f"set by the marketplace, not a {caller.role}"
            )
            for name in sent
        ],
    )
