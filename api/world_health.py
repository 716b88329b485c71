"""The periodic world check (bookme/world.py) as a `/health` component: degraded, never a 503.

Reads the last outcome only (no chain call per health request); every replica sees the same
chain, so a mismatch is an alert for people, not a reason to pull a replica.
"""

from __future__ import annotations

from api.health_status import Tier, failed, passed
from api.schemas import CheckResult
from bookme.world import WorldWatch


class WorldHealth:
    """`HealthComponent` named ``world``: ok, ``mismatch`` or ``unverified``."""

    name = "world"
    tier = Tier.DEGRADING

    def __init__(self, watch: WorldWatch) -> None:
        self._watch = watch

    async def check(self) -> CheckResult:
        status = self._watch.status()
        data: dict[str, str | int | float | bool | None] = {"checked_at": status.checked_at}
        if status.differences:
            data["failing"] = ",".join(sorted(status.failing))
            return failed("mismatch", status.summary, data=data)
        if status.checked_at is None:
            return failed("unverified", status.summary, data=data)
        return passed(status.summary, data=data)
