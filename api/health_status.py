"""What a failing check means: the tiers, the overall status, and the seam for plugged-in checks.

    ok            every check passes                                      200
    degraded      only non-critical checks fail (paused contract, lagging  200
                  listener, low operator gas, a world-check mismatch...)
    unavailable   a critical check fails (Postgres, Temporal)             503

A load balancer routes on `/health/ready` (critical checks only); `/health` is for people and
alerts. Degraded never pulls a replica: every replica would see the same chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal, Protocol

from api.schemas import CheckResult

Status = Literal["ok", "degraded", "unavailable"]


class Tier(StrEnum):
    CRITICAL = "critical"
    """Failing: this process cannot serve requests (ready and /health answer 503)."""
    DEGRADING = "degrading"
    """Failing: the service works with a known problem (/health says degraded, 200)."""


class HealthComponent(Protocol):
    """A check plugged into `/health` from outside (e.g. the periodic world checks).

    `check` returns `passed(...)` or `failed(code, detail)`: a short stable code and text the
    component wrote itself, never an exception's message. It is bounded by the checker's timeout;
    an exception it raises is reported as code `error`.
    """

    @property
    def name(self) -> str: ...

    @property
    def tier(self) -> Tier: ...

    async def check(self) -> CheckResult: ...


def passed(
    detail: str, *, data: dict[str, str | int | float | bool | None] | None = None
) -> CheckResult:
    return CheckResult(ok=True, code="ok", detail=detail, data=data or {})


def failed(
    code: str, detail: str, *, data: dict[str, str | int | float | bool | None] | None = None
) -> CheckResult:
    return CheckResult(ok=False, code=code, detail=detail, data=data or {})


def overall_status(checks: Mapping[str, CheckResult]) -> Status:
    """unavailable if a critical check fails, degraded if any other does, else ok."""
    failing = [check for check in checks.values() if not check.ok]
    if any(check.critical for check in failing):
        return "unavailable"
    return "degraded" if failing else "ok"


def http_status(status: Status) -> int:
    """Degraded still serves: only unavailable is a 503."""
    return 503 if status == "unavailable" else 200
