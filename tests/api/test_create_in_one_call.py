"""POST /bookings in one call to Temporal (update-with-start of ``recorded``): the answer is the
recorded row, read from nowhere; concurrent retries share one workflow; a booking Postgres
refuses is a 422 with the reason (real Postgres, Temporal and worker)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from api import booking_reads
from db.engine import make_engine
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import CUSTOMER_AUTH, SERVICE_AUTH, booking_body, serve

pytestmark = pytest.mark.integration

REFUSED_SERVICE = "refused-by-postgres"


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement `engine` runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_creation_answers_the_recorded_row_without_reading_it(
    factory: ApiFactory, worker: FakeChain, engine: AsyncEngine, migrated_db: str
) -> None:
    assert not hasattr(booking_reads, "wait_for_booking")  # the poll is gone
    api_engine = make_engine(migrated_db, pool_size=2)  # the worker's writes use `engine`
    async with serve(factory.app(engine=api_engine)) as client:
        with statements(api_engine) as seen:
            response = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        assert response.status_code == 201, response.text
        # The API read no booking: the answer came from the workflow's update.
        assert not [s for s in seen if "bookings" in s], seen
        created = response.json()
        # ...and the row was there when the answer arrived, exactly as answered.
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT status FROM bookings WHERE id = :id"), {"id": created["id"]}
                )
            ).one()
        assert row.status == "PENDING_PAYMENT"
        stored = await client.get(f"/bookings/{created['id']}", headers=CUSTOMER_AUTH)
        assert stored.status_code == 200
        detail = stored.json()
        del detail["live"]
        assert created == detail
    await api_engine.dispose()


async def test_concurrent_creations_with_one_key_start_one_workflow(
    client: httpx.AsyncClient, temporal_client: Client, engine: AsyncEngine
) -> None:
    body = booking_body()
    headers = {**SERVICE_AUTH, "Idempotency-Key": f"burst-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(client.post("/bookings", json=body, headers=headers) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(
        r.headers.get("Idempotent-Replayed") == "true" for r in responses if r.status_code == 200
    )
    booking_id = responses[0].json()["id"]
    history = await temporal_client.get_workflow_handle(f"booking-{booking_id}").fetch_history()
    starts = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    ]
    assert len(starts) == 1
    async with engine.connect() as conn:
        created = await conn.scalar(
            text("SELECT count(*) FROM booking_events WHERE booking_id = :id AND kind = 'created'"),
            {"id": booking_id},
        )
    assert created == 1
    # The same key with another body, even racing, is a conflict, never a second booking.
    other = await client.post("/bookings", json=booking_body(amount="30"), headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"


async def test_a_booking_postgres_refuses_is_a_422_with_the_reason_every_time(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # A rule of the marketplace's own schema the API does not know: Postgres refuses the row,
    # the workflow ends FAILED with the reason, and the caller is told (never a 500 or a hang).
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "ALTER TABLE bookings ADD CONSTRAINT ck_test_refused "
                f"CHECK (service_id <> '{REFUSED_SERVICE}')"
            )
        )
    headers = {**SERVICE_AUTH, "Idempotency-Key": f"refused-{uuid.uuid4()}"}
    body = booking_body(service_id=REFUSED_SERVICE)
    for _ in range(2):  # the first answer, then the retry's (its workflow has closed by then)
        refused = await client.post("/bookings", json=body, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "booking_unrecordable"
        assert "could not be stored" in refused.json()["message"]
        assert "23514" in refused.json()["message"]
    honest = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
    assert honest.status_code == 201, honest.text
