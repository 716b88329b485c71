"""Rate limits behind a proxy: only trusted proxies name the client, users never share a
bucket, and every authenticated route has a per-user limit."""

from __future__ import annotations

import httpx
import pytest
import uvicorn
from pydantic import ValidationError

import api.__main__ as api_main
from bookme.settings import Settings
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER,
    OTHER_CUSTOMER_AUTH,
    PROVIDER_AUTH,
    booking_body,
    serve,
)

pytestmark = pytest.mark.integration

# httpx's in-process transport connects from this address.
PEER = "127.0.0.1"


async def two_bookings(client: httpx.AsyncClient) -> tuple[str, str]:
    """One booking of CUSTOMER and one of OTHER_CUSTOMER."""
    ids = []
    for body in (
        booking_body(),
        booking_body(customer_id="cust-2", customer_wallet=OTHER_CUSTOMER),
    ):
        created = await client.post("/bookings", json=body, headers=OPERATOR_AUTH)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids[0], ids[1]


async def authorize(
    client: httpx.AsyncClient, booking_id: str, auth: dict[str, str], forwarded_for: str
) -> int:
    response = await client.post(
        f"/bookings/{booking_id}/payment-authorization",
        headers={**auth, "X-Forwarded-For": forwarded_for},
    )
    return response.status_code


async def test_behind_a_trusted_proxy_two_users_do_not_share_a_bucket(
    factory: ApiFactory, worker: FakeChain
) -> None:
    settings = {
        "trusted_proxies": [PEER],
        "signature_rate_limit_per_minute": 2,
        "signature_rate_limit_per_ip_per_minute": 2,
    }
    async with serve(factory.app(settings=settings)) as client:
        mine, theirs = await two_bookings(client)
        # The proxy appends the real client; whatever the client claimed before it is ignored.
        first = [
            await authorize(client, mine, CUSTOMER_AUTH, "10.9.9.9, 203.0.113.1") for _ in range(3)
        ]
        assert first == [200, 200, 429]
        # Before: every request through the proxy had its address, one bucket for everyone.
        assert await authorize(client, theirs, OTHER_CUSTOMER_AUTH, "203.0.113.2") == 200


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    factory: ApiFactory, worker: FakeChain
) -> None:
    settings = {
        "trusted_proxies": ["10.0.0.0/8"],
        "signature_rate_limit_per_minute": 2,
        "signature_rate_limit_per_ip_per_minute": 2,
    }
    async with serve(factory.app(settings=settings)) as client:
        mine, theirs = await two_bookings(client)
        assert await authorize(client, mine, CUSTOMER_AUTH, "198.51.100.1") == 200
        assert await authorize(client, mine, CUSTOMER_AUTH, "198.51.100.2") == 200
        # Another user from the same untrusted peer: the made-up addresses do not give it (or
        # the first user) a fresh per-address bucket; the peer's is spent.
        assert await authorize(client, theirs, OTHER_CUSTOMER_AUTH, "198.51.100.3") == 429


async def test_users_behind_one_address_each_keep_their_own_signature_limit(
    factory: ApiFactory, worker: FakeChain
) -> None:
    # One NAT (an office, a mobile carrier): the address's limit is the higher one (default 100).
    async with serve(factory.app(settings={"signature_rate_limit_per_minute": 2})) as client:
        mine, theirs = await two_bookings(client)
        first = [await authorize(client, mine, CUSTOMER_AUTH, "198.51.100.1") for _ in range(3)]
        assert first == [200, 200, 429]
        second = [await authorize(client, theirs, OTHER_CUSTOMER_AUTH, "x") for _ in range(2)]
        assert second == [200, 200]


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [
        ("GET", "/bookings/{id}/events", CUSTOMER_AUTH),
        ("GET", "/bookings/{id}", PROVIDER_AUTH),
        ("GET", "/bookings", CUSTOMER_AUTH),
    ],
)
async def test_a_route_without_its_own_limit_answers_429_after_the_per_user_limit(
    factory: ApiFactory, worker: FakeChain, method: str, path: str, auth: dict[str, str]
) -> None:
    async with serve(factory.app(settings={"rate_limit_per_minute": 3})) as client:
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        url = path.format(id=created.json()["id"])
        statuses = [(await client.request(method, url, headers=auth)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await client.request(method, url, headers=auth)
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Per user: someone else is not affected.
        assert (await client.get(url, headers=OPERATOR_AUTH)).status_code == 200


async def test_operator_routes_have_the_per_user_limit_too(
    factory: ApiFactory, worker: FakeChain
) -> None:
    async with serve(factory.app(settings={"rate_limit_per_minute": 2})) as client:
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        url = f"/admin/bookings/{created.json()['id']}/emergency-cancel"
        # The create counted as the operator's first request; this is the second.
        second = await client.post(url, json={"reason": "ops"}, headers=OPERATOR_AUTH)
        assert second.status_code != 429, second.text
        third = await client.post(url, json={"reason": "ops"}, headers=OPERATOR_AUTH)
        assert third.status_code == 429, third.text


def test_trusted_proxies_are_addresses_or_networks_never_anyone() -> None:
    assert Settings(_env_file=None).trusted_proxies == []
    parsed = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, 192.168.1.7")
    assert parsed.trusted_proxies == ["10.0.0.0/8", "192.168.1.7"]
    for bad in ("*", "proxy.internal", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
            Settings(_env_file=None, trusted_proxies=bad)


@pytest.mark.parametrize(("configured", "trusted"), [("", []), ("10.0.0.0/8", ["10.0.0.0/8"])])
def test_python_m_api_trusts_exactly_the_configured_proxies(
    monkeypatch: pytest.MonkeyPatch, configured: str, trusted: list[str]
) -> None:
    # uvicorn's own default would read FORWARDED_ALLOW_IPS, which deployments set to "*".
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    monkeypatch.setenv("BOOKME_TRUSTED_PROXIES", configured)
    captured: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: captured.append(server.config))
    monkeypatch.chdir("/")  # no .env
    api_main.main()
    assert captured[0].forwarded_allow_ips == trusted
