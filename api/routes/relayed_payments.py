"""`POST /bookings/{id}/payment`: pay with one signature; the platform sends it and pays the gas.

The customer signs the ERC-3009 transfer handed out by `POST /bookings/{id}/payment-authorization
?relayed=true` and posts the signature here. The booking's workflow relays it once: a repeated
request gets the same transaction back (`replayed`), never a second one.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from api.auth import Role
from api.deps import CurrentUser, StateDep, VisibleBooking, WatchRefusals, rate_limited
from api.errors import Forbidden, error_responses
from api.party_access import require_proven_wallet
from api.relay_desk import relay_rate_limit, set_up
from api.relay_schemas import RelayedPaymentCreate, RelayedPaymentPublic
from api.temporal_errors import answered
from workflows.client import BookingClient
from workflows.types.relay import RelayPaymentRequest

router = APIRouter(prefix="/bookings", tags=["bookings"])


async def relay_quota(state: StateDep, user: CurrentUser) -> None:
    """Relayed payment requests per customer and minute (each may cost the platform gas)."""
    if rate_limited(user):
        await relay_rate_limit(state.limiter, state.settings, user.user_id)


@router.post(
    "/{booking_id}/payment",
    response_model=RelayedPaymentPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": RelayedPaymentPublic, "description": "This booking was relayed already."},
        **error_responses(400, 401, 403, 404, 409, 422, 429, 503),
    },
    # WatchRefusals first: it also counts the refusals of the limit and of the handler.
    dependencies=[WatchRefusals, Depends(relay_quota)],
    description=(
        "The customer only. 409 `wrong_state` unless PENDING_PAYMENT with a live payment "
        "authorization; 409 `insufficient_usdc` when the wallet holds less than the amount; "
        "422 `relay_simulation_failed` or `invalid_transfer_signature` when the transaction "
        "would fail (nothing is sent); 503 `relay_unavailable` when relaying is off or the "
        "platform's relayer is low on gas (pay from the wallet instead); 429 over "
        "BOOKME_RELAY_RATE_LIMIT_PER_MINUTE."
    ),
)
async def relayed_payment(
    booking: VisibleBooking,
    body: RelayedPaymentCreate,
    user: CurrentUser,
    state: StateDep,
    response: Response,
) -> RelayedPaymentPublic:
    """Relay the customer's transfer signature: the booking is paid without ETH in the wallet."""
    party = user.acting_party(
        customer_wallet=booking.customer_wallet, provider_wallet=booking.provider_wallet
    )
    if party is not Role.CUSTOMER or booking.customer_wallet is None:
        raise Forbidden("only the booking's customer can pay", code="wrong_caller")
    await require_proven_wallet(state.sessions, state.settings, user, booking.customer_wallet)
    await set_up(state.relay).require_on()
    request = RelayPaymentRequest(
        caller_wallet=booking.customer_wallet,
        signature=body.signature,
        valid_after=int(body.valid_after),
        valid_before=int(body.valid_before),
    )
    workflow = BookingClient.for_booking(state.temporal, str(booking.id))
    relayed = await answered(workflow.relay_payment(request))
    if relayed.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return RelayedPaymentPublic(
        tx_hash=relayed.tx_hash,
        monitoring_until=relayed.monitoring_until,
        gas_used=relayed.gas_used,
        gas_cost_wei=str(relayed.gas_cost_wei),
        replayed=relayed.replayed,
    )


__all__ = ["router"]
