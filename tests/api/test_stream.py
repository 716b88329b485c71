"""GET /bookings/{id}/stream over a real socket: every transition in order, keep-alives,
and resumption after a reconnect with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from api.deps import ApiOptions
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OTHER_CUSTOMER_AUTH,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
    running_server,
)

pytestmark = pytest.mark.integration

# Guards against a hung test only; nothing asserts on elapsed time.
GUARD_SECONDS = 30


@dataclass
class Frame:
    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    current = Frame()
    async for line in response.aiter_lines():
        if line == "":
            if current.fields or current.comments:
                yield current
            current = Frame()
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            current.fields[name] = value.removeprefix(" ")


async def next_event(stream: AsyncIterator[Frame], seen_keepalive: list[bool]) -> Frame:
    async for frame in stream:
        if "id" in frame.fields:
            return frame
        if "keep-alive" in frame.comments:
            seen_keepalive.append(True)
    raise AssertionError("stream ended")


async def test_stream_delivers_transitions_and_resumes(
    factory: ApiFactory, worker: FakeChain
) -> None:
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(factory.app()) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        booking_id = created.json()["id"]
        url = f"/bookings/{booking_id}/stream"
        keepalives: list[bool] = []

        async with client.stream("GET", url, headers=PROVIDER_AUTH) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = frames(response)
            first = await next_event(stream, keepalives)
            assert first.fields["event"] == "status"
            assert json.loads(first.fields["data"])["to_status"] == "PENDING_PAYMENT"

            cancel = await client.post(
                f"/bookings/{booking_id}/cancellation",
                json={"reason": "cannot make it"},
                headers=CUSTOMER_AUTH,
            )
            assert cancel.status_code == 200
            second = await next_event(stream, keepalives)
            data = json.loads(second.fields["data"])
            assert (data["from_status"], data["to_status"]) == ("PENDING_PAYMENT", "CANCELLED")
            assert int(second.fields["id"]) > int(first.fields["id"])
            # Idle now: the server sends keep-alive comments.
            async for frame in stream:
                if "keep-alive" in frame.comments:
                    break

        # Reconnect after the first event: only what came later is replayed.
        resume = {**CUSTOMER_AUTH, "Last-Event-ID": first.fields["id"]}
        async with client.stream("GET", url, headers=resume) as response:
            stream = frames(response)
            replayed = await next_event(stream, keepalives)
            assert replayed.fields["id"] == second.fields["id"]

        # Reconnect after the last event: nothing is replayed, only keep-alives arrive.
        resume = {**CUSTOMER_AUTH, "Last-Event-ID": second.fields["id"]}
        async with client.stream("GET", url, headers=resume) as response:
            idle = [f async for f in _take(frames(response), 3)]
            assert all("id" not in f.fields for f in idle)
            assert any("keep-alive" in f.comments for f in idle)


async def _take(stream: AsyncIterator[Frame], count: int) -> AsyncIterator[Frame]:
    taken = 0
    async for frame in stream:
        yield frame
        taken += 1
        if taken == count:
            return


async def test_stream_checks_access_and_last_event_id(
    factory: ApiFactory, worker: FakeChain
) -> None:
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(factory.app()) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        url = f"/bookings/{created.json()['id']}/stream"
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers=OTHER_CUSTOMER_AUTH)).status_code == 403
        bad = await client.get(url, headers={**CUSTOMER_AUTH, "Last-Event-ID": "abc"})
        assert bad.status_code == 422
        assert bad.json()["details"][0]["field"] == "header.Last-Event-ID"


async def test_stream_ends_after_its_maximum_and_resumes(
    factory: ApiFactory, worker: FakeChain
) -> None:
    options = ApiOptions(
        sse_poll_interval_seconds=0.05, sse_keepalive_seconds=0.2, sse_max_seconds=0.5
    )
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(factory.app(options=options)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        url = f"/bookings/{created.json()['id']}/stream"
        async with client.stream("GET", url, headers=CUSTOMER_AUTH) as response:
            received = [f async for f in frames(response)]  # ends without the client closing
        ids = [f.fields["id"] for f in received if "id" in f.fields]
        assert len(ids) == 1
        assert received[0].fields["retry"] == "3000"
        resume = {**CUSTOMER_AUTH, "Last-Event-ID": ids[-1]}
        async with client.stream("GET", url, headers=resume) as response:
            again = [f async for f in frames(response)]
        assert all("id" not in f.fields for f in again)
