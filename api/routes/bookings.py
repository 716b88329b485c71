"""`/bookings`: create, read, list, audit trail, signed authorizations, reports, live stream."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api.adoption import MarketplaceBooking, PayableBooking, adopt
from api.auth import Principal, Role
from api.booking_reads import list_bookings, list_events
from api.booking_terms import CREATED_BY_THE_MARKETPLACE, MARKETPLACE_FIELDS, creation_refusal
from api.convert import (
    booking_detail,
    booking_input,
    booking_public,
    cancellation_public,
    event_public,
    payment_authorization_public,
    recorded_public,
    transaction_report_public,
)
from api.deps import (
    AppState,
    CreateRateLimit,
    CurrentUser,
    SessionDep,
    SignatureRateLimit,
    StateDep,
    StreamSlot,
    VisibleBooking,
    WatchRefusals,
)
from api.errors import Forbidden, InvalidField, ServiceUnavailable, error_responses
from api.idempotency import booking_id_for, create_once, recorded_replay, unanswered
from api.party_access import acting_as, listing_filter, require_proven_wallet
from api.relay_desk import set_up
from api.relay_schemas import RelayablePaymentAuthorizationPublic
from api.schemas import (
    BookingCreate,
    BookingDetail,
    BookingEventPage,
    BookingPage,
    BookingPublic,
    CancellationCreate,
    CancellationPublic,
    PaymentAuthorizationPublic,
    TransactionReportCreate,
    TransactionReportPublic,
    check_wallet,
    schedule_problem,
)
from api.sse import booking_events
from api.temporal_errors import answered, live_view
from db.statuses import BookingStatus
from workflows.client import BookingClient
from workflows.types import (
    AuthorizePaymentRequest,
    CancellationRequest,
    PaymentAuthorization,
    ReportTransactionRequest,
    TransactionKind,
)

router = APIRouter(prefix="/bookings", tags=["bookings"])

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_AUTH = (401, 403, 404, 422, 503)
MAX_EVENT_ID = 2**63 - 1  # booking_events.id is a BIGINT; a larger `after` cannot be bound
_EVENT_ID = re.compile(r"[0-9]{1,18}")


async def booking_creator(request: Request, user: CurrentUser) -> Principal:
    """The caller, if it may decide a booking's terms; else 403 naming the fields it sent."""
    refusal = creation_refusal(user, await _json_body(request))
    if refusal is not None:
        raise refusal
    return user


async def _json_body(request: Request) -> object:
    # Already read and parsed by FastAPI (Starlette caches it); a body that is not JSON
    # names no field.
    try:
        return await request.json()
    except ValueError:
        return None


BookingCreator = Annotated[Principal, Depends(booking_creator)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingPublic,
    description=(
        f"Marketplace (`service` role) or operator only: {CREATED_BY_THE_MARKETPLACE}. "
        "A customer or provider gets 403 `marketplace_only`, naming in `details` any of "
        f"{', '.join(f'`{name}`' for name in MARKETPLACE_FIELDS)} it sent. The customer then "
        "authorizes payment and cancels with a token whose `wallet` is `customer_wallet`. "
        "The Idempotency-Key is scoped to the caller."
    ),
    responses={
        200: {"model": BookingPublic, "description": "Replay of an earlier request (same key)."},
        **error_responses(401, 403, 409, 422, 429, 503),
    },
    dependencies=[CreateRateLimit],
)
async def create_booking(
    user: BookingCreator,
    body: BookingCreate,
    state: StateDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Same key + same body returns the same booking; another body is 409.",
        ),
    ] = None,
) -> BookingPublic:
    """Create a booking and start its workflow; returns it once it is recorded (one call)."""
    booking_id = booking_id_for(user.user_id, idempotency_key)
    booking = booking_input(body, state.settings, booking_id)
    if idempotency_key is not None:
        existing = await recorded_replay(state.sessions, booking)
        if existing is not None:
            return _created(response, booking_public(existing), replayed=True)
    # Checked after the replay: a retry of a recorded booking is answered even once its
    # time has passed; only a new booking must be ahead of now.
    problem = schedule_problem(booking.scheduled_at, datetime.now(UTC))
    if problem is not None:
        raise InvalidField("body.scheduled_at", problem)
    created = await create_once(
        state.temporal,
        booking,
        task_queue=state.settings.task_queue,
        created_by=user.user_id,
        within=state.options.create_wait_seconds,
    )
    if created is not None:
        return _created(response, recorded_public(created.recorded), replayed=created.replayed)
    # Its workflow closed already: the row written since the check above, or why there is none.
    existing = await recorded_replay(state.sessions, booking)
    if existing is None:
        raise await unanswered(state.temporal, booking)
    return _created(response, booking_public(existing), replayed=True)


def _created(response: Response, booking: BookingPublic, *, replayed: bool) -> BookingPublic:
    """The booking, with where it lives; a replay answers 200 and says so."""
    response.headers["Location"] = f"/bookings/{booking.id}"
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return booking


def _wallet_param(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_wallet(value)
    except ValueError as exc:
        raise InvalidField(f"query.{name}", str(exc)) from None


@router.get("", response_model=BookingPage, responses=error_responses(401, 403, 422, 503))
async def list_bookings_route(
    user: CurrentUser,
    session: SessionDep,
    status_: Annotated[BookingStatus | None, Query(alias="status")] = None,
    customer: Annotated[str | None, Query(description="Customer wallet (EIP-55).")] = None,
    provider: Annotated[str | None, Query(description="Provider wallet (EIP-55).")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> BookingPage:
    """List bookings newest first (keyset-paginated); non-operators see only their own."""
    flt = listing_filter(
        user,
        status=None if status_ is None else status_.value,
        customer=_wallet_param("customer", customer),
        provider=_wallet_param("provider", provider),
    )
    rows, next_cursor = await list_bookings(session, flt, limit=limit, cursor=cursor)
    return BookingPage(items=[booking_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/{booking_id}", response_model=BookingDetail, responses=error_responses(*_AUTH))
async def get_booking_route(booking: VisibleBooking, state: StateDep) -> BookingDetail:
    """One booking: the stored row and its workflow's live view."""
    view = await live_view(state.temporal, str(booking.id))
    return booking_detail(booking, view)


@router.get(
    "/{booking_id}/events", response_model=BookingEventPage, responses=error_responses(*_AUTH)
)
async def list_events_route(
    booking: VisibleBooking,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_EVENT_ID, description="Return entries with a larger id.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> BookingEventPage:
    """The booking's audit trail, oldest first."""
    rows = await list_events(session, booking.id, after=after, limit=limit)
    next_after = rows[-1].id if len(rows) == limit else None
    return BookingEventPage(items=[event_public(r) for r in rows], next_after=next_after)


RELAYED_DOC = (
    "true: also the USDC transfer (ERC-3009) the customer signs instead of paying, then POSTs "
    "to /bookings/{id}/payment; 503 relay_unavailable when relaying is off."
)
PAYMENT_AUTHORIZATION_RESPONSES = error_responses(401, 403, 404, 409, 422, 429, 503)
PAYMENT_AUTHORIZATION_DOC = (
    "A booking the marketplace inserted into its own `bookings` table (PENDING_PAYMENT, no "
    "wallets, no workflow) is adopted by its customer's first request: price, parties and "
    "inviter come from the row and the party directory, never from the request, and its "
    "workflow starts. What the directory lacks, a self-referral, a row not PENDING_PAYMENT "
    "or an amount with no exact base-unit value is 409, naming the field in `details`."
)


@router.post(
    "/{booking_id}/payment-authorization",
    response_model=RelayablePaymentAuthorizationPublic,
    response_model_exclude_none=True,
    responses=PAYMENT_AUTHORIZATION_RESPONSES,
    dependencies=[SignatureRateLimit, WatchRefusals],
    description=PAYMENT_AUTHORIZATION_DOC,
)
async def payment_authorization(
    booking: PayableBooking,
    user: CurrentUser,
    state: StateDep,
    relayed: Annotated[bool, Query(description=RELAYED_DOC)] = False,
) -> PaymentAuthorizationPublic:
    """A signed payment authorization for the booking's customer to submit on chain."""
    if relayed:  # refused before anything is signed: the wallet can still pay directly
        await set_up(state.relay).require_on()
    if isinstance(booking, MarketplaceBooking):
        return await _answer(state, await adopt(state, booking, user), relayed)
    party = user.acting_party(
        customer_wallet=booking.customer_wallet, provider_wallet=booking.provider_wallet
    )
    if party is not Role.CUSTOMER or booking.customer_wallet is None:
        raise Forbidden("only the booking's customer can pay", code="wrong_caller")
    await require_proven_wallet(state.sessions, state.settings, user, booking.customer_wallet)
    workflow = BookingClient.for_booking(state.temporal, str(booking.id))
    request = AuthorizePaymentRequest(caller_wallet=booking.customer_wallet)
    auth = await answered(workflow.authorize_payment(request))
    return await _answer(state, auth, relayed)


async def _answer(
    state: AppState, auth: PaymentAuthorization, relayed: bool
) -> PaymentAuthorizationPublic:
    """The authorization; with ``relayed``, also the ERC-3009 transfer that pays it."""
    if relayed:
        return await set_up(state.relay).with_transfer(auth)
    return payment_authorization_public(auth)


@router.post(
    "/{booking_id}/transactions",
    response_model=TransactionReportPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def report_transaction(
    booking: VisibleBooking, body: TransactionReportCreate, user: CurrentUser, state: StateDep
) -> TransactionReportPublic:
    """Report a submitted transaction; the booking watches the chain for it.

    Only the party who can send that transaction may report it, and a report never changes the
    booking's status by itself: the chain does.
    """
    role, wallet = acting_as(user, booking, "report transactions")
    request = ReportTransactionRequest(
        tx_hash=body.tx_hash, kind=TransactionKind(body.kind.value), role=role, wallet=wallet
    )
    workflow = BookingClient.for_booking(state.temporal, str(booking.id))
    report = await answered(workflow.report_transaction(request))
    return transaction_report_public(report)


@router.post(
    "/{booking_id}/cancellation",
    response_model=CancellationPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422, 429, 503),
    dependencies=[SignatureRateLimit, WatchRefusals],
)
async def cancellation(
    booking: VisibleBooking, body: CancellationCreate, user: CurrentUser, state: StateDep
) -> CancellationPublic:
    """Cancel: at once when unpaid, else a signed cancellation authorization to submit."""
    role, wallet = acting_as(user, booking, "cancel bookings")
    request = CancellationRequest(role=role, wallet=wallet, reason=body.reason)
    workflow = BookingClient.for_booking(state.temporal, str(booking.id))
    result = await answered(workflow.request_cancellation(request))
    return cancellation_public(result)


@router.get(
    "/{booking_id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`text/event-stream` of audit rows (`event: status`, `audit`, or "
            "`payment_seen` while a payment waits for its confirmations: reason 'payment seen, "
            "n of N confirmations'); each `id` is the row id, so `Last-Event-ID` resumes after it.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(*_AUTH, 429),
    },
)
async def stream(
    booking: VisibleBooking,
    request: Request,
    state: StateDep,
    _slot: Annotated[None, StreamSlot],
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event id.")
    ] = None,
) -> StreamingResponse:
    """Live status changes of the booking as Server-Sent Events, with keep-alives.

    The booking is read (and access checked) with a session closed before streaming starts;
    then the stream waits on the process's change feed. Open streams are capped per user and
    per server (429 `too_many_streams`).
    """
    after = _last_event_id(last_event_id)
    if state.changes is None:
        raise ServiceUnavailable("event streams are not running", code="streams_unavailable")
    frames = booking_events(
        state.changes,
        booking.id,
        last_event_id=after,
        fallback_poll=state.options.sse_poll_interval_seconds,
        keepalive_interval=state.options.sse_keepalive_seconds,
        max_seconds=state.options.sse_max_seconds,
        disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# The seed frontend's path (`fetch('/api/bookings/${id}/authorize-payment')`): the same handler,
# body and response (`authorization` and `signature` as the seed reads them, and more).
seed_router = APIRouter(prefix="/api/bookings", tags=["bookings"])
seed_router.add_api_route(
    "/{booking_id}/authorize-payment",
    payment_authorization,
    methods=["POST"],
    response_model=RelayablePaymentAuthorizationPublic,
    response_model_exclude_none=True,
    responses=PAYMENT_AUTHORIZATION_RESPONSES,
    dependencies=[SignatureRateLimit, WatchRefusals],
    summary="Payment Authorization (the seed frontend's path)",
    description=PAYMENT_AUTHORIZATION_DOC,
)


def _last_event_id(value: str | None) -> int:
    if value is None or value == "":
        return 0
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses (a 500).
    if _EVENT_ID.fullmatch(value) is None:
        raise InvalidField("header.Last-Event-ID", "must be an event id this stream sent")
    return int(value)


__all__ = ["router", "seed_router"]
