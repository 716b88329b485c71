"""OpenTelemetry: one trace from the API request through the workflow to the activity that
wrote the booking row, every booking span carrying the booking id; nothing when not configured."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from bookme.tracing import BOOKING_ID, traced_client, tracer_provider
from db.models import Booking
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain, worker_activities
from tests.api.helpers import SERVICE_AUTH, booking_body, serve
from workflows import BookingWorkflow

pytestmark = pytest.mark.integration


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, sorted(span.name for span in spans)
    return found[0]


async def test_one_trace_spans_the_request_and_the_activity_that_wrote_the_row(
    factory: ApiFactory,
    temporal_client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider(factory.settings, "bookme-test", exporter=exporter)
    assert provider is not None
    worker_client = traced_client(temporal_client, provider)
    async with (
        Worker(
            worker_client,
            task_queue=task_queue,
            workflows=[BookingWorkflow],
            activities=worker_activities(sessions, FakeChain()),
        ),
        serve(factory.app(tracing=provider)) as client,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        assert created.status_code == 201, created.text
    provider.force_flush()
    booking_id = created.json()["id"]
    spans = list(exporter.get_finished_spans())

    request = next(
        s for s in spans if s.kind is SpanKind.SERVER and s.name.startswith("POST /bookings")
    )
    # Creation is one update-with-start of the booking workflow (api/idempotency.py).
    start = _one(spans, "StartUpdateWithStartWorkflow:booking")
    wrote = _one(spans, "RunActivity:record_booking")
    assert request.context is not None
    assert start.context is not None
    assert wrote.context is not None
    # One trace: request -> workflow start -> (workflow) -> the activity that wrote the row.
    assert start.context.trace_id == request.context.trace_id
    assert wrote.context.trace_id == request.context.trace_id
    assert start.attributes is not None
    assert wrote.attributes is not None
    assert start.attributes[BOOKING_ID] == booking_id
    assert wrote.attributes[BOOKING_ID] == booking_id
    async with sessions() as session:
        assert await session.scalar(select(Booking.id).where(Booking.id == booking_id))


async def test_tracing_is_off_without_an_endpoint(
    factory: ApiFactory, temporal_client: Client
) -> None:
    assert factory.settings.otlp_traces_endpoint == ""
    assert tracer_provider(factory.settings, "bookme-api") is None
    assert traced_client(temporal_client, None) is temporal_client
    configured = factory.settings.model_copy(
        update={"otlp_traces_endpoint": "http://127.0.0.1:4318/v1/traces"}
    )
    provider = tracer_provider(configured, "bookme-api")
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "bookme-api"
    provider.shutdown()
