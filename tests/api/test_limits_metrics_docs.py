"""Rate limits shared through Postgres, the Prometheus endpoint, and the OpenAPI document."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.main import create_app
from api.ratelimit import Quota, RateLimiter
from bookme.settings import Settings
from db.models import RateLimitCounter
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import CUSTOMER_AUTH, OTHER_CUSTOMER_AUTH, SERVICE_AUTH, booking_body, serve

pytestmark = pytest.mark.integration


async def test_signature_endpoints_are_rate_limited_across_replicas(
    factory: ApiFactory, worker: FakeChain
) -> None:
    # Only the signing endpoints are this tight; creating the booking is not limited here.
    limit = {
        "settings": {
            "signature_rate_limit_per_minute": 3,
            "signature_rate_limit_per_ip_per_minute": 3,
        }
    }
    # Two app instances (two replicas) share the same Postgres counters.
    async with serve(factory.app(**limit)) as one, serve(factory.app(**limit)) as two:
        created = await one.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        url = f"/bookings/{created.json()['id']}/payment-authorization"
        statuses = [
            (await replica.post(url, headers=CUSTOMER_AUTH)).status_code
            for replica in (one, two, one)
        ]
        assert statuses == [200, 200, 200]
        refused = await two.post(url, headers=CUSTOMER_AUTH)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Another user from the same address is limited per IP too.
        per_ip = await one.post(url, headers=OTHER_CUSTOMER_AUTH)
        assert per_ip.status_code == 429


async def test_limiter_counts_per_key_and_prunes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    limiter = RateLimiter(sessions)
    a, b = Quota(key="a", limit=2), Quota(key="b", limit=2)
    counts = [d.count for _ in range(3) for d in await limiter.hit([a])]
    assert counts == [1, 2, 3]
    assert [d.allowed for d in await limiter.hit([a, b])] == [False, True]
    assert await limiter.prune() == 0  # current windows stay
    async with sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(RateLimitCounter))
    assert rows == 2


async def test_metrics_use_the_registry_passed_in(factory: ApiFactory, worker: FakeChain) -> None:
    registry = CollectorRegistry()
    app = create_app(factory.settings, temporal_client=factory.temporal_client, registry=registry)
    async with serve(app) as client:
        await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        await client.get("/bookings/not-a-uuid", headers=CUSTOMER_AUTH)
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'bookme_api_requests_total{method="POST",route="/bookings",status="201"} 1.0' in text
    assert 'route="/bookings/{booking_id}",status="422"' in text
    value = registry.get_sample_value(
        "bookme_api_requests_total", {"method": "POST", "route": "/bookings", "status": "201"}
    )
    assert value == 1.0


def test_openapi_documents_auth_errors_and_models() -> None:
    schema = create_app(Settings(_env_file=None), registry=CollectorRegistry()).openapi()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert operation.get("description") or operation.get("summary"), (path, method)
            if path.startswith(("/bookings", "/admin")):
                assert operation["security"] == [{"bearerAuth": []}], (path, method)
                # 422 comes from validating input: documented wherever there is input.
                takes_input = "requestBody" in operation or operation.get("parameters")
                for status in ("401", "422") if takes_input else ("401",):
                    ref = operation["responses"][status]["content"]["application/json"]["schema"]
                    assert ref["$ref"].endswith("/ErrorBody"), (path, method, status)
    create = schema["paths"]["/bookings"]["post"]
    assert {"201", "409", "429", "503"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


async def test_cancellation_shares_the_signature_limit_whose_default_is_10(
    factory: ApiFactory, worker: FakeChain
) -> None:
    assert Settings(_env_file=None).signature_rate_limit_per_minute == 10
    limit = {"settings": {"signature_rate_limit_per_minute": 2}}
    async with serve(factory.app(**limit)) as client:
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        url = f"/bookings/{created.json()['id']}"
        signed = await client.post(f"{url}/payment-authorization", headers=CUSTOMER_AUTH)
        assert signed.status_code == 200
        cancelled = await client.post(
            f"{url}/cancellation", json={"reason": "x"}, headers=CUSTOMER_AUTH
        )
        assert cancelled.status_code == 200
        refused = await client.post(
            f"{url}/cancellation", json={"reason": "x"}, headers=CUSTOMER_AUTH
        )
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
