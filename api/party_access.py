"""Which bookings a caller lists and in which party's name it acts on one (deny by default).

A customer or provider token acts through its one wallet; a marketplace user (`user` role, from
the party directory) is the customer of the bookings whose customer wallet they hold and the
provider of those whose provider wallet they hold.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import Principal, Role
from api.booking_reads import BookingFilter
from api.errors import Forbidden
from bookme.settings import Settings
from db.models import Booking
from db.wallet_links import wallet_owner
from workflows.types import PartyRole


def listing_filter(
    user: Principal, *, status: str | None, customer: str | None, provider: str | None
) -> BookingFilter:
    """The listing filter for this caller: operators any, parties only their own bookings."""
    if user.is_operator:
        return BookingFilter(status=status, customer_wallet=customer, provider_wallet=provider)
    if user.role is Role.CUSTOMER:
        if customer not in (None, user.wallet):
            raise Forbidden("customers list only their own bookings", code="not_your_wallet")
        return BookingFilter(status=status, customer_wallet=user.wallet, provider_wallet=provider)
    if user.role is Role.PROVIDER:
        if provider not in (None, user.wallet):
            raise Forbidden("providers list only their own bookings", code="not_your_wallet")
        return BookingFilter(status=status, customer_wallet=customer, provider_wallet=user.wallet)
    if user.role is Role.USER:
        if any(w is not None and not user.holds(w) for w in (customer, provider)):
            raise Forbidden("users list only their own bookings", code="not_your_wallet")
        return BookingFilter(
            status=status,
            customer_wallet=customer,
            provider_wallet=provider,
            party_wallets=user.wallets,
        )
    # A service credential creates bookings; it is no party to them and sees none.
    raise Forbidden("only parties and operators list bookings", code="not_a_party")


def acting_as(user: Principal, booking: Booking, what: str) -> tuple[PartyRole, str]:
    """The role and wallet (an operator: their id) a caller acts with on the booking."""
    if user.is_operator:
        return PartyRole.OPERATOR, user.wallet or user.user_id
    party = user.acting_party(
        customer_wallet=booking.customer_wallet, provider_wallet=booking.provider_wallet
    )
    if party is Role.CUSTOMER and booking.customer_wallet is not None:
        return PartyRole.CUSTOMER, booking.customer_wallet
    if party is Role.PROVIDER and booking.provider_wallet is not None:
        return PartyRole.PROVIDER, booking.provider_wallet
    raise Forbidden(f"only the booking's parties or an operator {what}", code="wrong_caller")


async def require_proven_wallet(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, user: Principal, wallet: str
) -> None:
    """When proof is required, 403 `wallet_not_proven` unless the user linked `wallet` by SIWE."""
    if not settings.wallet_proof_required():
        return
    async with sessions() as session:
        owner = await wallet_owner(session, wallet)
    if owner != user.user_id:
        raise Forbidden(
            f"prove you hold {wallet} first: link it with Sign-In with Ethereum (POST /me/wallets)",
            code="wallet_not_proven",
        )
