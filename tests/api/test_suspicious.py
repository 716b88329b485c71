"""More than 5 refused authorization requests from one user in 5 minutes is raised once:
a counter, a warning log line and the notifier."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from api.auth import Principal, Role
from api.metrics import ApiMetrics
from api.ratelimit import Decision, RateLimiter
from api.suspicious import RefusalMonitor, SuspiciousActivity
from bookme.settings import Settings
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    PROVIDER_AUTH,
    booking_body,
    serve,
)

pytestmark = pytest.mark.integration


class RecordingNotifier:
    def __init__(self) -> None:
        self.cases: list[SuspiciousActivity] = []

    async def notify(self, activity: SuspiciousActivity) -> None:
        self.cases.append(activity)


def raised(metrics: str, role: str) -> float:
    prefix = f'bookme_api_suspicious_activity_total{{role="{role}"}} '
    values = [
        float(line.removeprefix(prefix)) for line in metrics.splitlines() if line.startswith(prefix)
    ]
    return values[0] if values else 0.0


def test_the_default_is_more_than_5_in_5_minutes() -> None:
    settings = Settings(_env_file=None)
    assert settings.suspicious_refusals == 5
    assert timedelta(seconds=settings.suspicious_window_seconds) == timedelta(minutes=5)


async def test_the_sixth_refused_authorization_in_the_window_is_raised_once(
    factory: ApiFactory, worker: FakeChain
) -> None:
    notifier = RecordingNotifier()
    async with serve(factory.app(notifier=notifier)) as client:
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        booking = f"/bookings/{created.json()['id']}"

        async def refused_as_provider() -> None:
            # Only the customer may take a payment authorization.
            response = await client.post(f"{booking}/payment-authorization", headers=PROVIDER_AUTH)
            assert response.status_code == 403, response.text

        # A stranger's refusals (not a party) are counted for the stranger, apart.
        for _ in range(5):
            stranger = await client.post(
                f"{booking}/cancellation", json={"reason": "x"}, headers=OTHER_CUSTOMER_AUTH
            )
            assert stranger.status_code == 403
        with capture_logs() as logs:
            for _ in range(5):
                await refused_as_provider()
            assert notifier.cases == []
            await refused_as_provider()  # the sixth
            await refused_as_provider()  # the seventh repeats it: not raised again
        assert len(notifier.cases) == 1
        case = notifier.cases[0]
        assert (case.user_id, case.role, case.refusals, case.window_seconds) == (
            "prov-1",
            "provider",
            6,
            300,
        )
        assert (case.route, case.status, case.code) == (
            "/bookings/{booking_id}/payment-authorization",
            403,
            "wrong_caller",
        )
        assert case.booking_id == created.json()["id"]
        warnings = [e for e in logs if e["event"] == "suspicious activity"]
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning"
        assert warnings[0]["user_id"] == "prov-1"
        metrics = (await client.get("/metrics")).text
        assert raised(metrics, "provider") == 1.0
        assert raised(metrics, "customer") == 0.0
        # Served requests and the customer's own refusals are unaffected.
        signed = await client.post(f"{booking}/payment-authorization", headers=CUSTOMER_AUTH)
        assert signed.status_code == 200


async def test_a_refusal_that_cannot_be_counted_is_logged_and_never_raises() -> None:
    class DownLimiter:
        async def hit(self, quotas: object) -> list[Decision]:
            raise ConnectionError("postgres went away")

    notifier = RecordingNotifier()
    monitor = RefusalMonitor(
        cast(RateLimiter, DownLimiter()),
        threshold=0,
        window=timedelta(minutes=5),
        notifier=notifier,
        raised=ApiMetrics(CollectorRegistry()).suspicious,
    )
    user = Principal(user_id="prov-1", role=Role.PROVIDER, wallet=None)
    with capture_logs() as logs:
        case = await monitor.refused(
            user, route="/x", status=403, code="wrong_caller", booking_id=None
        )
    assert case is None
    assert notifier.cases == []
    assert [e["event"] for e in logs] == ["refusal not counted"]
