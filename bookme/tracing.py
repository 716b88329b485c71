"""OpenTelemetry traces across API request -> workflow -> activity, off unless configured.

With BOOKME_OTLP_TRACES_ENDPOINT set (an OTLP/HTTP traces URL, e.g.
``http://otel-collector:4318/v1/traces``) a process builds a tracer provider exporting there; the
API instruments FastAPI with it, and the API's and the worker's Temporal clients carry
temporalio's TracingInterceptor, which propagates the trace in workflow and activity headers.
Every span made for a booking's workflow (start, signals, updates, each activity) carries the
booking id as ``bookme.booking_id``. Without the setting nothing is installed: no provider, no
interceptor, no cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from opentelemetry import trace
from temporalio import activity, client, worker

from bookme.settings import Settings
from workflows.constants import booking_workflow_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

BOOKING_ID = "bookme.booking_id"
_PREFIX = booking_workflow_id("")


def tracer_provider(
    settings: Settings, service: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """A provider exporting to `exporter`, else to BOOKME_OTLP_TRACES_ENDPOINT; None when off."""
    if exporter is None and not settings.otlp_traces_endpoint:
        return None
    # Imported only when tracing is on: the SDK pulls in optional packages (psutil) at import.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        exporter = OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def traced_client(temporal: client.Client, provider: TracerProvider | None) -> client.Client:
    """The same connection with the tracing interceptors (the client unchanged when off).

    Workers built on the returned client trace their workflows and activities too.
    """
    if provider is None:
        return temporal
    from temporalio.contrib.opentelemetry import TracingInterceptor

    config = temporal.config()
    tracer = provider.get_tracer("bookme")
    config["interceptors"] = [
        *config["interceptors"],
        TracingInterceptor(tracer),
        BookingIdInterceptor(),
    ]
    return client.Client(**config)


def instrumented(app: FastAPI, provider: TracerProvider | None) -> FastAPI:
    """The app with a server span per request (unchanged when tracing is off)."""
    if provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    return app


def _booking_id(workflow_id: str | None) -> str | None:
    if workflow_id and workflow_id.startswith(_PREFIX):
        return workflow_id[len(_PREFIX) :]
    return None


def _tag(workflow_id: str | None) -> None:
    booking_id = _booking_id(workflow_id)
    if booking_id is not None:
        trace.get_current_span().set_attribute(BOOKING_ID, booking_id)


class BookingIdInterceptor(client.Interceptor, worker.Interceptor):
    """Names the booking on the span around each client call and activity of its workflow
    (inside TracingInterceptor's spans: it comes after it in the interceptor list)."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientTagger(next)

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _ActivityTagger(next)


class _ClientTagger(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        _tag(input.id)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        _tag(input.id)
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        _tag(input.id)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: client.StartWorkflowUpdateWithStartInput
    ) -> Any:
        _tag(input.start_workflow_input.id)
        return await super().start_update_with_start_workflow(input)


class _ActivityTagger(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        _tag(activity.info().workflow_id)
        return await super().execute_activity(input)
