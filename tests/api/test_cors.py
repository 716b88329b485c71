"""CORS for the marketplace's frontend: preflight, a real cross-origin request, refusals that a
browser can still read, other origins left without headers, and the production guard."""

from __future__ import annotations

import httpx
import pytest

from bookme.settings import Settings
from bookme.settings_checks import cors_problems, production_problems
from tests.api.conftest import ApiFactory
from tests.api.helpers import CUSTOMER_AUTH, running_server

pytestmark = pytest.mark.integration
FRONTEND = "https://app.marketplace.example"


async def test_the_frontend_origin_gets_preflight_and_real_responses_others_get_nothing(
    factory: ApiFactory,
) -> None:
    app = factory.app(settings={"cors_origins": [FRONTEND]})
    async with running_server(app) as base, httpx.AsyncClient(base_url=base) as client:
        preflight = await client.options(
            "/bookings",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers

        listed = await client.get("/bookings", headers={**CUSTOMER_AUTH, "Origin": FRONTEND})
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == FRONTEND
        # A refusal is readable by the page too (its code, its Retry-After).
        refused = await client.get("/bookings", headers={"Origin": FRONTEND})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == FRONTEND
        assert "www-authenticate" in refused.headers["access-control-expose-headers"].lower()

        evil = "https://evil.example"
        other = await client.options(
            "/bookings", headers={"Origin": evil, "Access-Control-Request-Method": "GET"}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        cross = await client.get("/bookings", headers={**CUSTOMER_AUTH, "Origin": evil})
        assert "access-control-allow-origin" not in cross.headers


def test_production_refuses_any_origin_with_credentials() -> None:
    wildcard = Settings(_env_file=None, cors_origins="*", cors_allow_credentials=True)
    assert cors_problems(wildcard) == [
        "BOOKME_CORS_ORIGINS=* with BOOKME_CORS_ALLOW_CREDENTIALS=true (list the origins)"
    ]
    assert cors_problems(wildcard)[0] in production_problems(wildcard)
    listed = Settings(
        _env_file=None, cors_origins=f"{FRONTEND}, https://b.example", cors_allow_credentials=True
    )
    assert listed.cors_origins == [FRONTEND, "https://b.example"]
    assert cors_problems(listed) == []
    assert cors_problems(Settings(_env_file=None, cors_origins="*")) == []
