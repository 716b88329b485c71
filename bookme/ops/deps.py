"""Connections an operator command needs, each failing as `Unreachable` with a one-line reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from bookme.dev import mask_url
from bookme.embedded.stack import DEV_DATABASE
from bookme.endpoints import escrow_address, rpc_urls
from bookme.ops.errors import OpsError, Unreachable
from bookme.settings import Settings, SettingsError
from bookme.temporal_connect import TemporalUnreachable, temporal_connection
from bookme.temporal_connect import connect_temporal as connect_to_temporal
from chain.client import ChainClient
from chain.errors import AllProvidersFailed, ChainError, ProviderError
from chain.escrow import EscrowReader
from db.engine import make_engine, make_session_factory
from workflows import DATA_CONVERTER

TEMPORAL_CONNECT_TIMEOUT_SECONDS = 10.0
# What a chain call raises when no provider answers (reverts are answers, not outages).
CHAIN_DOWN = (AllProvidersFailed, ProviderError)


def database_url(settings: Settings) -> str:
    """The configured database, else the one `make dev` runs."""
    return (
        settings.database_url
        or f"postgresql+asyncpg://postgres@127.0.0.1:{settings.dev_postgres_port}/{DEV_DATABASE}"
    )


def temporal_ui_url(settings: Settings) -> str:
    return (settings.temporal_ui_url or f"http://127.0.0.1:{settings.dev_temporal_ui_port}").rstrip(
        "/"
    )


def history_url(settings: Settings, workflow_id: str, run_id: str | None = None) -> str:
    """The workflow's event history in the Temporal Web UI."""
    base = f"{temporal_ui_url(settings)}/namespaces/{settings.temporal_namespace}/workflows"
    return f"{base}/{workflow_id}/{run_id}/history" if run_id else f"{base}/{workflow_id}"


async def _port_open(address: str) -> str | None:
    """None if something listens at ``host:port``, else why not."""
    host, _, port = address.rpartition(":")
    try:
        async with asyncio.timeout(TEMPORAL_CONNECT_TIMEOUT_SECONDS):
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, TimeoutError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    writer.close()
    await writer.wait_closed()
    return None


async def connect_temporal(settings: Settings) -> Client:
    """The processes' one code path (TLS, API key, profile), failing as `Unreachable`."""
    try:
        address = temporal_connection(settings).address
    except SettingsError as exc:
        raise OpsError(str(exc)) from None
    # Checked first: the SDK retries a refused connection for half a minute, and abandoning
    # its connect call leaves a native thread that crashes the interpreter at exit.
    refused = await _port_open(address)
    if refused is not None:
        raise Unreachable(f"Temporal at {address} is unreachable: {refused}")
    try:
        return await connect_to_temporal(settings, data_converter=DATA_CONVERTER)
    except TemporalUnreachable as exc:
        raise Unreachable(str(exc)) from None


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory; the first failing statement raises `Unreachable`."""
    url = database_url(settings)
    engine = make_engine(url, pool_size=2)
    try:
        yield make_session_factory(engine)
    except (OperationalError, InterfaceError, OSError) as exc:
        raise Unreachable(
            f"Postgres at {mask_url(url)} is unreachable: {_first_line(exc)}"
        ) from None
    except DBAPIError as exc:
        # Answered, but refused: most often a database not migrated (`bookme migrate`).
        raise OpsError(f"Postgres at {mask_url(url)} refused a query: {_first_line(exc)}") from None
    finally:
        await engine.dispose()


@asynccontextmanager
async def escrow_reader(settings: Settings) -> AsyncIterator[EscrowReader]:
    """The configured escrow over the configured providers; outages raise `Unreachable`."""
    try:
        escrow = escrow_address(settings)
    except SettingsError as exc:
        raise OpsError(str(exc)) from None
    client = ChainClient.from_settings(settings.model_copy(update={"rpc_urls": rpc_urls(settings)}))
    try:
        yield EscrowReader(client, escrow)
    except CHAIN_DOWN as exc:
        raise Unreachable(f"no RPC provider answered: {exc}") from None
    except ChainError as exc:
        raise OpsError(f"chain call failed on escrow {escrow}: {exc}") from None
    finally:
        await client.close()
