"""The FastAPI application factory: `uvicorn api.main:create_app --factory`.

`create_app` builds nothing that does I/O; its lifespan connects what was not passed in
(Postgres engine, Temporal client, chain client) and closes only what it built itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.auth import TokenVerifier
from api.body_limit import BodyLimitMiddleware
from api.change_feed import change_feed
from api.cors import install_cors
from api.deps import ApiOptions, AppState, UserRateLimit
from api.directory import party_directory
from api.errors import error_responses, install_error_handlers
from api.health import HealthChecker
from api.metrics import ApiMetrics, MetricsMiddleware
from api.ratelimit import KEEP, RateLimiter
from api.relay_desk import RelayDesk
from api.routes import admin, api_keys, bookings, health, metrics, relayed_payments, wallets
from api.routes.webhooks import router as webhooks_router
from api.stream_slots import StreamSlots
from api.suspicious import RefusalMonitor, SuspicionNotifier
from api.webhook_notifier import OutboxNotifier
from api.world_health import WorldHealth
from bookme.endpoints import known_escrow_address
from bookme.settings import Settings, SettingsError
from bookme.temporal_connect import connect_temporal
from bookme.tracing import instrumented, traced_client, tracer_provider
from bookme.world import WorldWatch, watch_world
from chain.client import ChainClient
from chain.escrow import EscrowReader
from db.directory import PartyDirectory
from db.engine import make_engine, make_session_factory
from workflows import DATA_CONVERTER

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = structlog.get_logger(__name__)

PRUNE_INTERVAL_SECONDS = 60.0

DESCRIPTION = """
Creates bookings (each one a durable Temporal workflow), hands out signed EIP-712 payment and
cancellation authorizations for the BookingEscrow contract, and serves booking state.

**Auth**: every `/bookings`, `/me` and `/admin` route needs `Authorization: Bearer <credential>`:
a JWT from the identity provider (only `sub` when the marketplace's users table knows the
subject; else claims `role` and `wallet`), or a `bm_live_…` API key of the marketplace's server
(role `service`). Customers and providers see and act on their own bookings only; `/admin` is
for operators. `/me/wallets` links a wallet with Sign-In with Ethereum (EIP-4361).

**Money**: amounts are decimal strings of USDC (`"25.50"`, at most 6 decimals); uint256 values
in signed authorizations are decimal strings of base units.

**Errors**: every error body is `{"code", "message", "details"}` (`application/json`) with a
stable `code`; a missing token is `401 missing_token`, a bad one `invalid_token` or
`token_expired`. The payment and cancellation answers are camelCase (the contract's field
names); everything else is snake_case.
"""


@dataclass(frozen=True, kw_only=True)
class Connections:
    """What the lifespan connects to unless it was passed in."""

    engine: AsyncEngine
    temporal: Client
    chain: ChainClient | None


def create_app(
    settings: Settings | None = None,
    *,
    temporal_client: Client | None = None,
    engine: AsyncEngine | None = None,
    chain_client: ChainClient | None = None,
    registry: CollectorRegistry | None = None,
    token_verifier: TokenVerifier | None = None,
    options: ApiOptions | None = None,
    notifier: SuspicionNotifier | None = None,
    directory: PartyDirectory | None = None,
    tracing: TracerProvider | None = None,
) -> FastAPI:
    """Build the API; anything passed in is used as is and left open at shutdown."""
    settings = settings if settings is not None else Settings()
    tracing = tracing if tracing is not None else tracer_provider(settings, "bookme-api")
    registry = registry if registry is not None else CollectorRegistry()
    options = options if options is not None else ApiOptions()
    verifier = (
        token_verifier if token_verifier is not None else TokenVerifier.from_settings(settings)
    )
    api_metrics = ApiMetrics(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            connections = await _connect(
                settings,
                stack,
                registry,
                engine=engine,
                temporal=temporal_client,
                chain=chain_client,
                tracing=tracing,
            )
            world = await _watch_world(settings, connections, stack, registry)
            state = build_state(
                settings,
                options,
                connections,
                verifier=verifier,
                registry=registry,
                api_metrics=api_metrics,
                notifier=notifier,
                directory=directory,
            )
            if world is not None:
                state.health.components = (*state.health.components, WorldHealth(world))
            state.changes = await stack.enter_async_context(change_feed(connections.engine.url))
            app.state.bookme = state
            pruner = asyncio.create_task(_prune_forever(state.limiter))
            try:
                log.info("api started", environment=settings.environment.value)
                yield
            finally:
                pruner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruner

    return instrumented(_routed_app(settings, lifespan, api_metrics), tracing)


async def _connect(
    settings: Settings,
    stack: AsyncExitStack,
    registry: CollectorRegistry,
    *,
    engine: AsyncEngine | None,
    temporal: Client | None,
    chain: ChainClient | None,
    tracing: TracerProvider | None = None,
) -> Connections:
    """Connect what was not passed in; `stack` closes only what was connected here."""
    if engine is None:
        if not settings.database_url:
            raise SettingsError("BOOKME_DATABASE_URL must be set to run the API")
        engine = make_engine(settings.database_url, settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
    if temporal is None:
        if not settings.temporal_address and not settings.temporal_profile:
            raise SettingsError("BOOKME_TEMPORAL_ADDRESS must be set to run the API")
        # Lazy: the API starts (and /health says why it is unhealthy) while Temporal is down.
        temporal = await connect_temporal(settings, data_converter=DATA_CONVERTER, lazy=True)
    if chain is None and settings.rpc_urls:
        chain = ChainClient.from_settings(settings, registry=registry)
        stack.push_async_callback(chain.close)
    # Traced: the workflow's and its activities' spans join the request's trace.
    return Connections(engine=engine, temporal=traced_client(temporal, tracing), chain=chain)


async def _watch_world(
    settings: Settings,
    connections: Connections,
    stack: AsyncExitStack,
    registry: CollectorRegistry,
) -> WorldWatch | None:
    """The chain checked against the settings (refusing to start in production), if configured."""
    address = known_escrow_address(settings)
    if connections.chain is None or not address:
        return None
    return await stack.enter_async_context(
        watch_world(settings, connections.chain, address, registry=registry, process="api")
    )


def build_state(
    settings: Settings,
    options: ApiOptions,
    connections: Connections,
    *,
    verifier: TokenVerifier,
    registry: CollectorRegistry,
    api_metrics: ApiMetrics,
    notifier: SuspicionNotifier | None,
    directory: PartyDirectory | None = None,
) -> AppState:
    """Everything the handlers reach through `api.deps`, over the given connections."""
    chain = connections.chain
    address = known_escrow_address(settings)
    sessions = make_session_factory(connections.engine)
    suspicious_window = timedelta(seconds=settings.suspicious_window_seconds)
    limiter = RateLimiter(sessions, keep=max(KEEP, 2 * suspicious_window))
    return AppState(
        settings=settings,
        options=options,
        engine=connections.engine,
        sessions=sessions,
        temporal=connections.temporal,
        verifier=verifier,
        limiter=limiter,
        registry=registry,
        # The one passed in (tests), else SQL over the marketplace's users table (settings).
        directory=directory if directory is not None else party_directory(settings, sessions),
        streams=StreamSlots(
            per_user=settings.max_streams_per_user,
            per_process=settings.max_streams_per_process,
        ),
        refusals=RefusalMonitor(
            limiter,
            threshold=settings.suspicious_refusals,
            window=suspicious_window,
            # The marketplace hears of it through the webhook outbox unless a test passes one.
            notifier=notifier if notifier is not None else OutboxNotifier(sessions),
            raised=api_metrics.suspicious,
        ),
        relay=RelayDesk(settings, EscrowReader(chain, address) if chain and address else None),
        health=HealthChecker(
            sessions=sessions,
            temporal=connections.temporal,
            chain=chain,
            escrow=EscrowReader(chain, address) if chain and address else None,
            chain_id=settings.chain_id,
            head_stale_after_seconds=settings.head_stale_after_seconds,
            confirmations=settings.confirmations,
            max_listener_lag_blocks=options.max_listener_lag_blocks,
            operator_min_balance_wei=settings.operator_min_balance_wei,
            timeout_seconds=options.health_timeout_seconds,
        ),
    )


def _routed_app(
    settings: Settings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    api_metrics: ApiMetrics,
) -> FastAPI:
    """The application: its middleware, from the innermost out, and its routers."""
    app = FastAPI(
        title="BookMe escrow API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Added innermost first: the proxy's client address is settled before anything counts
    # the request, and an oversized body is refused (and counted) before it is parsed.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=api_metrics)
    # Here rather than only in uvicorn: every server the app runs under (python -m api, the
    # uvicorn CLI in compose, tests) honours the same trusted proxies, and no others.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    # bookings.seed_router: the seed frontend's path for payment authorizations, an alias.
    for router in (bookings.router, bookings.seed_router, relayed_payments.router, admin.router):
        # Every authenticated route has a per-user limit by default.
        app.include_router(
            router, dependencies=[UserRateLimit], responses=error_responses(413, 429)
        )
    app.include_router(
        webhooks_router, dependencies=[UserRateLimit], responses=error_responses(413, 429)
    )
    for module in (health, metrics):
        app.include_router(module.router)
    for identity_router in (wallets.router, api_keys.router):
        app.include_router(
            identity_router, dependencies=[UserRateLimit], responses=error_responses(413, 429)
        )
    # Last, so outermost: preflights are answered first and every response carries the headers.
    install_cors(app, settings)
    return app


async def _prune_forever(limiter: RateLimiter) -> None:
    """Delete old rate-limit windows now and then (any replica may do it; it is idempotent)."""
    while True:
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
        try:
            await limiter.prune()
        except Exception as exc:  # pruning is housekeeping; the next round tries again
            log.warning("rate limit pruning failed", error=type(exc).__name__)
