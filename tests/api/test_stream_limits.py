"""Event streams cannot exhaust the database pool, and open streams are capped per user and
per process (real uvicorn, real Postgres and Temporal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import httpx
import pytest

from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    PROVIDER_AUTH,
    booking_body,
    running_server,
)

pytestmark = pytest.mark.integration

# Guards against a hung test; the pool's own wait is 30 s, far above the client timeout.
GUARD_SECONDS = 60
CLIENT_TIMEOUT_SECONDS = 10


@asynccontextmanager
async def api(factory: ApiFactory, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A live server with `settings`, a client, and a booking of CUSTOMER with PROVIDER."""
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(factory.app(settings=settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT_SECONDS) as client,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        assert created.status_code == 201, created.text
        yield client, created.json()["id"]


async def open_stream(
    streams: AsyncExitStack, client: httpx.AsyncClient, url: str, auth: dict[str, str]
) -> httpx.Response:
    """Open a stream and wait for its first frame: the server is streaming by then."""
    response = await streams.enter_async_context(client.stream("GET", url, headers=auth))
    if response.status_code == 200:
        lines = cast(AsyncGenerator[str, None], response.aiter_lines())
        # Held by the stack: a dropped, half-read iterator would close the connection.
        streams.push_async_callback(lines.aclose)
        assert (await anext(lines)).startswith("retry:")
    return response


async def test_more_streams_than_the_pool_leave_reads_and_health_answering(
    factory: ApiFactory, worker: FakeChain
) -> None:
    # A pool of 2 (+2 overflow). Before the fix each open stream kept one connection "idle in
    # transaction": the fifth request waited for the pool and got no answer.
    settings = {"db_pool_size": 2, "max_streams_per_user": 10, "max_streams_per_process": 20}
    async with api(factory, **settings) as (client, booking_id), AsyncExitStack() as streams:
        url = f"/bookings/{booking_id}/stream"
        for _ in range(6):
            response = await open_stream(streams, client, url, CUSTOMER_AUTH)
            assert response.status_code == 200
        events = await client.get(f"/bookings/{booking_id}/events", headers=PROVIDER_AUTH)
        assert events.status_code == 200, events.text
        assert events.json()["items"][0]["to_status"] == "PENDING_PAYMENT"
        health = await client.get("/health")
        # No chain in this stack, so the whole report is "unavailable"; Postgres answers.
        assert health.json()["checks"]["postgres"]["ok"] is True, health.text


async def test_streams_are_capped_per_user_and_a_closed_one_frees_its_slot(
    factory: ApiFactory, worker: FakeChain
) -> None:
    async with api(factory, max_streams_per_user=2) as (client, booking_id):
        url = f"/bookings/{booking_id}/stream"
        async with AsyncExitStack() as first:
            async with AsyncExitStack() as streams:
                for _ in range(2):
                    assert (
                        await open_stream(streams, client, url, CUSTOMER_AUTH)
                    ).status_code == 200
                refused = await client.get(url, headers=CUSTOMER_AUTH)
                assert refused.status_code == 429, refused.text
                assert refused.json()["code"] == "too_many_streams"
                assert "at most 2 event streams" in refused.json()["message"]
                assert int(refused.headers["Retry-After"]) >= 1
                # The cap is per user: the provider still gets a stream.
                other = await open_stream(first, client, url, PROVIDER_AUTH)
                assert other.status_code == 200
            # Both customer streams are closed; their slots come back once the server notices.
            while True:
                async with AsyncExitStack() as again:
                    response = await open_stream(again, client, url, CUSTOMER_AUTH)
                    if response.status_code == 200:
                        break
                    assert response.status_code == 429
                await asyncio.sleep(0.05)


async def test_streams_are_capped_per_process(factory: ApiFactory, worker: FakeChain) -> None:
    async with (
        api(factory, max_streams_per_user=5, max_streams_per_process=2) as (client, booking_id),
        AsyncExitStack() as streams,
    ):
        url = f"/bookings/{booking_id}/stream"
        for auth in (CUSTOMER_AUTH, PROVIDER_AUTH):
            assert (await open_stream(streams, client, url, auth)).status_code == 200
        refused = await client.get(url, headers=OPERATOR_AUTH)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "server_streams_full"
