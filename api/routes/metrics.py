"""`/metrics`: the app's Prometheus registry in the text exposition format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.errors import Forbidden, error_responses
from api.observability_access import may_observe

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **error_responses(403),
    },
)
async def metrics(state: StateDep, request: Request) -> Response:
    """Prometheus metrics (HTTP edge and chain client); restricted by settings."""
    if not await may_observe(request, state):
        raise Forbidden(
            "metrics are restricted to operators and allowed networks",
            code="observability_restricted",
        )
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
