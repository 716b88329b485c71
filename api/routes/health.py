"""`/health`: 200 when every dependency is fine, 503 with the same report when one is not."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.schemas import HealthReport

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "A dependency is down (see checks)."}},
)
async def health(state: StateDep) -> JSONResponse:
    """Postgres, Temporal, chain head age and provider, escrow pause flag, listener lag."""
    report = await state.health.report()
    code = 200 if report.status == "ok" else 503
    headers = {} if code == 200 else {"Retry-After": "5"}
    return JSONResponse(status_code=code, content=report.model_dump(mode="json"), headers=headers)
