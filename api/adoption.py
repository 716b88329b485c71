"""Adoption of the marketplace's own booking rows by the customer's payment request.

The marketplace's app inserts a booking into its `bookings` table itself: service, customer,
provider, amount in whole USDC, time, PENDING_PAYMENT; no wallets, no chain columns, no
workflow. The customer's first `payment-authorization` request for that row adopts it. The
terms come from trusted data only: the row (service, parties, price, time) and the party
directory (wallets, the inviter by the referral rule), the fee rates from the booking policy;
nothing from the request but who is asking. The booking's workflow is then started with
update-with-start, so the authorization comes back in the same call and concurrent adoptions
(any number of API processes) share one workflow; its `record_booking` fills in the same row.

Every refusal happens before anything starts: a caller who is not the row's customer, or pays
from a wallet not proven where proof is required (403); a row not PENDING_PAYMENT, an amount
with no exact base-unit value, a fact the directory lacks, a self-referral (409, each naming
the field in `details`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

import structlog
from fastapi import Depends, Path
from sqlalchemy import Text, cast, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import Principal, Role
from api.deps import AppState, CurrentUser, SessionDep, visible_booking
from api.errors import Conflict, ErrorDetail, Forbidden, ServiceUnavailable
from api.idempotency import MEMO_CREATED_BY
from api.money import exact_units, format_units
from api.party_access import require_proven_wallet
from api.schemas import schedule_problem
from api.temporal_errors import answered
from bookme.settings import Settings
from chain.eip712 import chain_booking_id
from db.directory import DirectoryMissing, DirectoryUnavailable, DirectoryUser, PartyDirectory
from db.models import Booking
from db.statuses import BookingStatus
from workflows.client import BookingClient
from workflows.types import AuthorizePaymentRequest, BookingInput, PaymentAuthorization

log = structlog.get_logger(__name__)

MEMO_ADOPTED = "adopted"
# Roles that may pay: a customer, or a marketplace user whose role is decided per booking.
PAYING_ROLES = frozenset({Role.CUSTOMER, Role.USER})
ADOPTABLE_STATUS = BookingStatus.PENDING_PAYMENT.value
_T = Booking.__table__.c


@dataclass(frozen=True, kw_only=True)
class MarketplaceBooking:
    """A booking row no workflow manages yet, as the marketplace's app wrote it."""

    id: uuid.UUID
    service_id: str | None
    customer_id: str | None
    provider_id: str | None
    scheduled_at: datetime | None
    status: str | None
    amount_units: int | None
    # The seed's `amount` column (whole USDC) as Postgres prints it; None where there is none.
    amount: str | None
    chain_booking_id: str | None


async def marketplace_booking(
    session: AsyncSession, booking_id: uuid.UUID
) -> MarketplaceBooking | None:
    """The row `booking_id` if no workflow manages it yet (None: no row, or a managed one).

    Read as text where the marketplace may hold values this service does not (a status of its
    own); `amount` is read through the row's JSON, so a schema without that column reads NULL.
    """
    stmt = select(
        _T.service_id,
        _T.customer_id,
        _T.provider_id,
        _T.scheduled_at,
        cast(_T.status, Text).label("status"),
        _T.amount_units,
        literal_column("to_jsonb(bookings) ->> 'amount'").label("amount"),
        _T.blockchain_booking_id,
    ).where(_T.id == booking_id, _T.workflow_id.is_(None))
    row = (await session.execute(stmt)).mappings().first()
    if row is None:
        return None
    return MarketplaceBooking(
        id=booking_id,
        service_id=row["service_id"],
        customer_id=row["customer_id"],
        provider_id=row["provider_id"],
        scheduled_at=row["scheduled_at"],  # aware: UtcDateTime reads a legacy TIMESTAMP as UTC
        status=row["status"],
        amount_units=None if row["amount_units"] is None else int(row["amount_units"]),
        amount=row["amount"],
        chain_booking_id=row["blockchain_booking_id"],
    )


def _refused(code: str, field: str, message: str) -> Conflict:
    return Conflict(message, code=code, details=[ErrorDetail(field=field, message=message)])


def _missing(missing: DirectoryMissing) -> Conflict:
    return _refused("directory_missing", missing.field, missing.message)


async def _directory_user(
    directory: PartyDirectory, user_id: str | None, field: str
) -> DirectoryUser:
    """The marketplace user a row names, with a wallet; else 409 naming what is missing."""
    role = field.removesuffix("_id")
    if user_id is None:
        raise _missing(DirectoryMissing(field, f"the booking names no {role}"))
    user = await directory.user(user_id)
    if user is None:
        raise _missing(DirectoryMissing(field, f"the {role} {user_id!r} is not a known user"))
    if not user.wallets:
        raise _missing(DirectoryMissing(f"{role}_wallet", f"the {role} {user_id!r} has no wallet"))
    return user


def _paying_wallet(
    caller: Principal, row: MarketplaceBooking, customer: DirectoryUser | None
) -> str:
    """The wallet the booking's customer pays from; 403 unless the caller is that customer.

    The caller is the customer by user id, or by holding a wallet the directory lists for the
    customer. They pay from the first of their wallets the directory lists, else from their own
    primary wallet (proven with SIWE where proof is required), else from the directory's.
    """
    known = {w.lower() for w in customer.wallets} if customer is not None else set()
    listed = [wallet for wallet in caller.wallets if wallet.lower() in known]
    by_id = row.customer_id is not None and caller.user_id == row.customer_id
    if caller.role not in PAYING_ROLES or not (by_id or listed):
        raise Forbidden("only the booking's customer can pay", code="not_a_party")
    if customer is None:
        raise _missing(
            DirectoryMissing("customer_id", f"the customer {row.customer_id!r} is not a known user")
        )
    if listed:
        return listed[0]
    if caller.wallet is not None:
        return caller.wallet
    if not customer.wallets:
        raise _missing(DirectoryMissing("customer_wallet", "the customer has no wallet"))
    return customer.wallets[0]


def _price(row: MarketplaceBooking, settings: Settings) -> int:
    """The row's price in base units: its own `amount_units`, else its whole-USDC `amount`."""
    units = row.amount_units
    if units is None and row.amount is not None:
        try:
            units = exact_units(Decimal(row.amount))
        except (InvalidOperation, ValueError):
            units = None
        if units is None:
            raise _refused(
                "amount_not_exact",
                "amount",
                f"the booking's amount {row.amount} USDC is not a positive whole number of"
                " base units (at most 6 decimals)",
            )
    if units is None or units <= 0:
        raise _refused("amount_not_exact", "amount", "the booking has no positive amount")
    if units > settings.max_booking_amount_units:
        cap = format_units(settings.max_booking_amount_units)
        raise _refused("amount_over_cap", "amount", f"the amount exceeds the cap of {cap} USDC")
    return units


async def adoption_terms(
    row: MarketplaceBooking,
    caller: Principal,
    directory: PartyDirectory,
    settings: Settings,
    now: datetime,
) -> tuple[BookingInput, str]:
    """The workflow's start input and the paying wallet, from the row and the directory only."""
    customer = None if row.customer_id is None else await directory.user(row.customer_id)
    paying = _paying_wallet(caller, row, customer)
    if row.status != ADOPTABLE_STATUS:
        raise _refused(
            "not_payable", "status", f"the booking is {row.status}, not {ADOPTABLE_STATUS}"
        )
    provider = await _directory_user(directory, row.provider_id, "provider_id")
    provider_wallet = provider.wallets[0]
    if provider_wallet.lower() == paying.lower():
        raise _refused("same_party", "provider_wallet", "the customer and provider share a wallet")
    inviter = await _inviter(directory, str(row.customer_id), provider.user_id)
    if inviter is not None and inviter.lower() in (paying.lower(), provider_wallet.lower()):
        raise _refused(
            "self_referral",
            "inviter_wallet",
            "the booking's inviter is its customer or its provider: no inviter fee goes to a party",
        )
    service_id, scheduled_at = _appointment(row, now)
    booking = BookingInput(
        booking_id=str(row.id),
        chain_booking_id=_chain_id(row),
        customer_wallet=paying,
        provider_wallet=provider_wallet,
        inviter_wallet=inviter,
        amount_units=_price(row, settings),
        scheduled_at=scheduled_at,
        service_id=service_id,
        customer_id=str(row.customer_id),
        provider_id=str(row.provider_id),  # as the row spells it: adoption matches on it
        policy=settings.booking_policy(),
    )
    return booking, paying


async def _inviter(directory: PartyDirectory, customer_id: str, provider_id: str) -> str | None:
    try:
        return await directory.inviter_wallet(customer_id=customer_id, provider_id=provider_id)
    except DirectoryMissing as missing:
        raise _missing(missing) from None


def _appointment(row: MarketplaceBooking, now: datetime) -> tuple[str, datetime]:
    """The row's service and time (to the second, as the contract's release time uses it)."""
    if row.service_id is None or row.scheduled_at is None:
        field = "service_id" if row.service_id is None else "scheduled_at"
        raise _refused("booking_incomplete", field, f"the booking has no {field}")
    problem = schedule_problem(row.scheduled_at, now)
    if problem is not None:
        raise _refused("not_payable", "scheduled_at", f"the booking's time {problem}")
    return row.service_id, row.scheduled_at.astimezone(UTC).replace(microsecond=0)


def _chain_id(row: MarketplaceBooking) -> str:
    ours = chain_booking_id(row.id)
    if row.chain_booking_id is not None and row.chain_booking_id.lower() != ours.lower():
        raise _refused(
            "not_payable", "blockchain_booking_id", "the booking is linked to another chain id"
        )
    return ours


async def payable_booking(
    booking_id: Annotated[uuid.UUID, Path(description="Booking id (UUID).")],
    user: CurrentUser,
    session: SessionDep,
) -> Booking | MarketplaceBooking:
    """The booking in the path: the marketplace's own row still to adopt, else a visible one."""
    row = await marketplace_booking(session, booking_id)
    if row is not None:
        return row
    return await visible_booking(booking_id, user, session)


PayableBooking = Annotated[Booking | MarketplaceBooking, Depends(payable_booking)]


async def adopt(
    state: AppState, row: MarketplaceBooking, caller: Principal
) -> PaymentAuthorization:
    """Adopt the row for its customer and return their payment authorization, in one call."""
    if state.directory is None:
        raise _refused(
            "not_adoptable",
            "customer_id",
            "this booking was not created through the API and no party directory is configured"
            " (BOOKME_DIRECTORY_USERS_TABLE) to take its terms from",
        )
    try:
        terms = await adoption_terms(row, caller, state.directory, state.settings, _now())
    except DirectoryUnavailable as exc:
        log.error("party directory unavailable", error=str(exc))
        raise ServiceUnavailable(
            "the marketplace's party directory cannot be read", code="directory_unavailable"
        ) from None
    booking, paying = terms
    await require_proven_wallet(state.sessions, state.settings, caller, paying)
    memo = {MEMO_CREATED_BY: caller.user_id, MEMO_ADOPTED: True}
    request = AuthorizePaymentRequest(caller_wallet=paying)
    start = BookingClient.adopt(
        state.temporal, booking, request, task_queue=state.settings.task_queue, memo=memo
    )
    try:
        return await answered(start)
    except WorkflowAlreadyStartedError:
        # Its workflow ran and closed without the row ever being recorded as managed.
        raise Conflict(
            "this booking is closed: it accepts no more requests", code="booking_closed"
        ) from None


def _now() -> datetime:
    return datetime.now(UTC)
