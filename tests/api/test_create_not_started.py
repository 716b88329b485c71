"""A booking whose workflow Temporal never started is a 503 (retry with the same key), never
409 ``booking_closed`` (issue #18: right after a Temporal outage the update-with-start timed out
before the start was persisted, and the retry was told the booking was closed). Real Postgres,
Temporal and worker; only the update-with-start call is replaced, by what a slow server does."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.convert import booking_input
from api.errors import ServiceUnavailable
from api.idempotency import booking_id_for, unanswered
from api.schemas import BookingCreate
from bookme.settings import Settings
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import SERVICE_AUTH, booking_body, serve

pytestmark = pytest.mark.integration


class UnstartedClient:
    """The real client, except that update-with-start fails with `error` and starts nothing."""

    def __init__(self, real: Client, error: Exception) -> None:
        self._real = real
        self._error = error

    async def execute_update_with_start_workflow(self, *_args: Any, **_kwargs: Any) -> Any:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_unanswered_for_a_booking_never_started_says_retry(
    temporal_client: Client, api_settings: Settings
) -> None:
    booking_id = booking_id_for("marketplace", f"never-{uuid.uuid4()}")
    booking = booking_input(BookingCreate(**booking_body()), api_settings, booking_id)
    error = await unanswered(temporal_client, booking)
    assert isinstance(error, ServiceUnavailable), error
    assert error.code == "booking_not_started"
    assert "same Idempotency-Key" in error.message


@pytest.mark.parametrize(
    "error",
    [
        WorkflowUpdateRPCTimeoutOrCancelledError(),
        RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""),
    ],
    ids=["rpc-timeout", "not-found"],
)
async def test_a_creation_temporal_never_started_is_a_503_and_the_retry_creates_it(
    factory: ApiFactory, worker: FakeChain, temporal_client: Client, error: Exception
) -> None:
    headers = {**SERVICE_AUTH, "Idempotency-Key": f"unstarted-{uuid.uuid4()}"}
    body = booking_body()
    unstarted = cast(Client, UnstartedClient(temporal_client, error))
    async with serve(factory.app(temporal_client=unstarted)) as slow:
        refused = await slow.post("/bookings", json=body, headers=headers)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "booking_not_started"
    assert int(refused.headers["Retry-After"]) >= 1
    # Nothing was created, so the retry with the same key creates it once.
    async with serve(factory.app()) as api:
        retried = await api.post("/bookings", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
