"""`/health/live` and `/health/ready` for load balancers; `/health`, the detailed report.

Route on `ready` (Postgres and Temporal reachable), restart on `live` (the process answers).
`/health` says ok, degraded (200: serving, with a known problem) or unavailable (503); see
`api/health_status.py` for which check falls in which tier.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.health_status import failed, http_status
from api.observability_access import may_observe
from api.schemas import HealthReport, Liveness

router = APIRouter(tags=["health"])

# A stopping process serves what it holds but takes nothing new (api/draining.py).
DRAINING = HealthReport(
    status="unavailable",
    checks={
        "process": failed("draining", "the process is stopping").model_copy(
            update={"critical": True}
        )
    },
)

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthReport, "description": "A critical dependency is down."}
}


def _answer(report: HealthReport) -> JSONResponse:
    code = http_status(report.status)
    headers = {"Retry-After": "5"} if code == 503 else {}
    return JSONResponse(status_code=code, content=report.model_dump(mode="json"), headers=headers)


@router.get("/health/live", response_model=Liveness)
async def live() -> Liveness:
    """The process is up (no dependency is checked): restart it if this fails."""
    return Liveness()


@router.get("/health/ready", response_model=HealthReport, responses=UNAVAILABLE)
async def ready(state: StateDep) -> JSONResponse:
    """Postgres and Temporal reachable: route traffic here (503 otherwise, and while the
    process is stopping: `draining`)."""
    if state.changes is not None and state.changes.draining:
        return _answer(DRAINING)
    return _answer(await state.health.ready())


@router.get("/health", response_model=HealthReport, responses=UNAVAILABLE)
async def health(state: StateDep, request: Request) -> JSONResponse:
    """Every check with a code: ok, degraded (200) or unavailable (503)."""
    report = await state.health.report()
    if not await may_observe(request, state):
        report = HealthReport(status=report.status)
    return _answer(report)
