"""Request bodies over the configured maximum get 413 before parsing or authentication,
whether their length is declared or they arrive chunked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bookme.settings import Settings
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import CUSTOMER_AUTH, OPERATOR_AUTH, booking_body, running_server

pytestmark = pytest.mark.integration

LIMIT = 4096
GUARD_SECONDS = 30


async def chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    """A body without Content-Length (Transfer-Encoding: chunked)."""
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_the_default_maximum_is_64_kib() -> None:
    assert Settings(_env_file=None).max_request_body_bytes == 64 * 1024


async def test_bodies_over_the_maximum_are_refused_before_auth_and_parsing(
    factory: ApiFactory, worker: FakeChain
) -> None:
    app = factory.app(settings={"max_request_body_bytes": LIMIT})
    async with (
        asyncio.timeout(GUARD_SECONDS),
        running_server(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        json_type = {"Content-Type": "application/json"}
        # Declared length, no token at all: 413, not 401.
        declared = await client.post("/bookings", content=b"{" + b" " * LIMIT, headers=json_type)
        assert declared.status_code == 413, declared.text
        assert declared.json()["code"] == "body_too_large"
        assert str(LIMIT) in declared.json()["message"]
        # Chunked, no Content-Length: read only up to the limit, then 413.
        chunked = await client.post(
            "/bookings", content=chunks(LIMIT * 16), headers={**json_type, **OPERATOR_AUTH}
        )
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["code"] == "body_too_large"
        # A chunked body within the limit reaches the app whole.
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        assert created.status_code == 201, created.text
        reason = b'{"reason": "' + b"x" * 100 + b'"}'

        async def small() -> AsyncIterator[bytes]:
            yield reason[:7]
            yield reason[7:]

        cancelled = await client.post(
            f"/bookings/{created.json()['id']}/cancellation",
            content=small(),
            headers={**json_type, **CUSTOMER_AUTH},
        )
        assert cancelled.status_code == 200, cancelled.text
        # The server kept serving.
        assert (await client.get("/bookings", headers=CUSTOMER_AUTH)).status_code == 200
