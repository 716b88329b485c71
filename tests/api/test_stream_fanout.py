"""Event streams fanned out from one LISTEN per API process (api/change_feed.py): many streams on
two database connections, a killed LISTEN connection replaced with nothing lost, and a slow
stream's bounded queue (real uvicorn, Postgres, Temporal and worker)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.change_feed import QUEUE_SIZE, RESYNC, ChangeFeed, Subscription
from api.deps import ApiOptions
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
    running_server,
)
from tests.api.test_stream import Frame, frames, next_event

GUARD_SECONDS = 90
STREAMS = 200
# Far above the guard: a stream that gets the change got it from a notification, not a poll.
NO_POLLING = ApiOptions(sse_poll_interval_seconds=600, sse_keepalive_seconds=600)
STREAMING_CONNECTIONS = (
    "SELECT pid, application_name FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name LIKE 'bookme-api-stream%'"
)


async def open_streams(
    stack: AsyncExitStack, client: httpx.AsyncClient, url: str, count: int
) -> list[AsyncIterator[Frame]]:
    """`count` streams, each past its first event (the booking's creation)."""

    async def one() -> AsyncIterator[Frame]:
        response = await stack.enter_async_context(client.stream("GET", url, headers=PROVIDER_AUTH))
        assert response.status_code == 200, await response.aread()
        stream = frames(response)
        first = await next_event(stream, [])
        assert json.loads(first.fields["data"])["to_status"] == "PENDING_PAYMENT"
        return stream

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def cancel(client: httpx.AsyncClient, booking_id: str) -> None:
    response = await client.post(
        f"/bookings/{booking_id}/cancellation",
        json={"reason": "changed plans"},
        headers=CUSTOMER_AUTH,
    )
    assert response.status_code == 200, response.text


async def assert_all_see_the_cancellation(streams: list[AsyncIterator[Frame]]) -> None:
    received = await asyncio.gather(*(next_event(stream, []) for stream in streams))
    for frame in received:
        assert json.loads(frame.fields["data"])["to_status"] == "CANCELLED"


async def test_two_hundred_streams_get_a_change_over_at_most_two_connections(
    factory: ApiFactory, worker: FakeChain, engine: AsyncEngine
) -> None:
    app = factory.app(
        options=NO_POLLING,
        settings={"max_streams_per_user": STREAMS, "max_streams_per_process": STREAMS},
    )
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=STREAMS + 10)
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client,
        AsyncExitStack() as stack,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        booking_id = created.json()["id"]
        streams = await open_streams(stack, client, f"/bookings/{booking_id}/stream", STREAMS)
        await cancel(client, booking_id)
        await assert_all_see_the_cancellation(streams)
        async with engine.connect() as conn:
            used = (await conn.execute(text(STREAMING_CONNECTIONS))).all()
        assert 1 <= len(used) <= 2, used


async def test_streams_get_the_next_change_after_the_listen_connection_is_killed(
    factory: ApiFactory, worker: FakeChain, engine: AsyncEngine
) -> None:
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(factory.app(options=NO_POLLING)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        AsyncExitStack() as stack,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        booking_id = created.json()["id"]
        streams = await open_streams(stack, client, f"/bookings/{booking_id}/stream", 3)
        listen = "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
        name = {"name": "bookme-api-stream-listen"}
        async with engine.connect() as conn:
            killed = (await conn.execute(text(listen), name)).scalar_one()
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})
        # The change lands while the feed may still be reconnecting: the re-read after the
        # reconnect finds it (no stream polls here).
        await cancel(client, booking_id)
        await assert_all_see_the_cancellation(streams)
        async with engine.connect() as conn:
            replacement = (await conn.execute(text(listen), name)).scalar_one()
        assert replacement != killed


async def test_a_slow_streams_queue_is_bounded_and_it_re_reads_once() -> None:
    subscription = Subscription(uuid.uuid4())
    for event_id in range(1, 101):
        subscription.offer(event_id)
    assert subscription.overflowed == 100 - QUEUE_SIZE
    # One wake-up for the whole backlog, a re-read: the stream reads every row after its last.
    assert await subscription.wait(0) == RESYNC
    assert await subscription.wait(0) is None


async def test_notifications_wake_only_the_streams_of_their_booking() -> None:
    feed = ChangeFeed("postgresql://unused", reader=None)  # type: ignore[arg-type]
    mine, other = uuid.uuid4(), uuid.uuid4()
    with feed.subscribe(mine) as watching, feed.subscribe(other) as elsewhere:
        feed.dispatch(f"{mine}:42")
        feed.dispatch("not a notification")
        assert await watching.wait(0) == 42
        assert await elsewhere.wait(0) is None
        feed.resync()
        assert await elsewhere.wait(0) == RESYNC
    assert feed.streams == 0
