"""Request dependencies: the app's state, a DB session, the caller, and access checks.

Annotated aliases (`SessionDep`, `CurrentUser`, ...) keep the route signatures short.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.auth import Principal, Role, TokenVerifier
from api.booking_reads import get_booking
from api.change_feed import ChangeFeed
from api.errors import ApiError, Forbidden, NotFound, Unauthorized
from api.health import HealthChecker
from api.principals import authenticate
from api.ratelimit import Quota, RateLimiter
from api.relay_desk import RelayDesk
from api.stream_slots import StreamSlots
from api.suspicious import RefusalMonitor, is_refusal
from bookme.settings import Settings
from db.directory import PartyDirectory
from db.models import Booking


@dataclass(frozen=True, kw_only=True)
class ApiOptions:
    """Tunables of the HTTP edge that are not service settings (tests shorten them)."""

    create_wait_seconds: float = 10.0
    # How often a stream re-reads while the change feed is not listening (it polls no more
    # once the feed is back: api/change_feed.py).
    sse_poll_interval_seconds: float = 0.5
    sse_keepalive_seconds: float = 15.0
    sse_max_seconds: float = 300.0
    max_listener_lag_blocks: int = 20
    health_timeout_seconds: float = 3.0


@dataclass(kw_only=True)
class AppState:
    """Everything the lifespan built; handlers reach it through the dependencies below."""

    settings: Settings
    options: ApiOptions
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    verifier: TokenVerifier
    limiter: RateLimiter
    health: HealthChecker
    registry: CollectorRegistry
    streams: StreamSlots
    refusals: RefusalMonitor
    # The marketplace's party directory (db/directory.py); None: tokens must carry a role claim
    # or get BOOKME_JWT_DEFAULT_ROLE.
    directory: PartyDirectory | None = None
    # The process's LISTEN connection the event streams wait on (set by the lifespan).
    changes: ChangeFeed | None = None
    # Relayed payments: whether they are on, the transfer to sign (set by build_state).
    relay: RelayDesk | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.bookme
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_temporal(state: StateDep) -> Client:
    return state.temporal


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
# Closed when the handler returns, not when the response has been sent: a streamed response
# (an event stream lasts minutes) must not keep a pooled connection "idle in transaction".
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT or API key",
    description="A JWT from the identity provider (only `sub` needed when the party directory "
    "knows the subject; else claims `role` and `wallet`), or a `bm_live_…` API key (`service`).",
)


async def current_user(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The verified caller; 401 without a valid bearer token, 403 for an unknown user."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required", code="missing_token")
    return await authenticate(
        credentials.credentials,
        verifier=state.verifier,
        sessions=state.sessions,
        directory=state.directory,
    )


CurrentUser = Annotated[Principal, Depends(current_user)]


async def operator_user(user: CurrentUser) -> Principal:
    """The caller, who must be an operator (403 otherwise)."""
    if not user.is_operator:
        raise Forbidden("operators only", code="operator_required")
    return user


OperatorUser = Annotated[Principal, Depends(operator_user)]


async def visible_booking(
    booking_id: Annotated[uuid.UUID, Path(description="Booking id (UUID).")],
    user: CurrentUser,
    session: SessionDep,
) -> Booking:
    """The booking in the path, if the caller is a party to it or an operator."""
    row = await get_booking(session, booking_id)
    if row is None:
        raise NotFound("no such booking", code="booking_not_found")
    if not user.may_see(customer_wallet=row.customer_wallet, provider_wallet=row.provider_wallet):
        raise Forbidden("you are not a party to this booking", code="not_a_party")
    return row


VisibleBooking = Annotated[Booking, Depends(visible_booking)]


def client_ip(request: Request) -> str:
    """The client's address: the socket peer, or what a trusted proxy says (api/main.py)."""
    return request.client.host if request.client else "unknown"


def rate_limited(user: Principal) -> bool:
    """Whether the caller's requests count against limits: everyone but the marketplace's
    service credential, which acts for every user (its limit would be the platform's)."""
    return user.role is not Role.SERVICE


async def user_rate_limit(state: StateDep, user: CurrentUser) -> None:
    """The default limit of every authenticated route: requests per user and minute."""
    if rate_limited(user):
        limit = state.settings.rate_limit_per_minute
        await state.limiter.enforce([Quota(key=f"user:{user.user_id}", limit=limit)])


async def signature_rate_limit(request: Request, state: StateDep, user: CurrentUser) -> None:
    """Count one signature request per user and per client address; 429 when over.

    The address's limit is the higher one: every user behind one NAT shares it.
    """
    if rate_limited(user):
        settings = state.settings
        await state.limiter.enforce(
            [
                Quota(
                    key=f"sig:user:{user.user_id}", limit=settings.signature_rate_limit_per_minute
                ),
                Quota(
                    key=f"sig:ip:{client_ip(request)}",
                    limit=settings.signature_rate_limit_per_ip_per_minute,
                ),
            ]
        )


async def create_rate_limit(request: Request, state: StateDep, user: CurrentUser) -> None:
    """Count one booking creation per client address (per user: `user_rate_limit`)."""
    if rate_limited(user):
        limit = state.settings.rate_limit_per_minute
        await state.limiter.enforce([Quota(key=f"create:ip:{client_ip(request)}", limit=limit)])


UserRateLimit = Depends(user_rate_limit)
SignatureRateLimit = Depends(signature_rate_limit)
CreateRateLimit = Depends(create_rate_limit)


async def stream_slot(state: StateDep, user: CurrentUser) -> AsyncIterator[None]:
    """Hold one of the capped stream slots until the stream's response has ended."""
    state.streams.take(user.user_id)
    try:
        yield
    finally:
        state.streams.release(user.user_id)


StreamSlot = Depends(stream_slot)


async def watch_refusals(
    request: Request, state: StateDep, user: CurrentUser
) -> AsyncIterator[None]:
    """Count the caller's refused authorization requests (see api/suspicious.py).

    Listed before the route's other dependencies, so it also sees their refusals (not a
    party, no such booking), and the handler's.
    """
    try:
        yield
    except (ApiError, RequestValidationError) as exc:
        status = exc.status if isinstance(exc, ApiError) else 422
        if is_refusal(status):
            await state.refusals.refused(
                user,
                route=getattr(request.scope.get("route"), "path", request.url.path),
                status=status,
                code=exc.code if isinstance(exc, ApiError) else "validation_error",
                booking_id=request.path_params.get("booking_id"),
            )
        raise


WatchRefusals = Depends(watch_refusals)
