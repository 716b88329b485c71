"""Every role x every booking route x own / other booking: exactly the allowed calls succeed,
and a refused call reveals nothing about the booking."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    OTHER_PROVIDER_AUTH,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
    running_server,
)

pytestmark = pytest.mark.integration

TX = "0x" + "cd" * 32
ROUTES: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "read": ("GET", "", None),
    "events": ("GET", "/events", None),
    "pay": ("POST", "/payment-authorization", None),
    "report": ("POST", "/transactions", {"tx_hash": TX, "kind": "payment"}),
    "cancel": ("POST", "/cancellation", {"reason": "matrix"}),
    "emergency": ("POST", "!admin/emergency-cancel", {"reason": "matrix"}),
}
ROLES = {
    "customer": CUSTOMER_AUTH,
    "provider": PROVIDER_AUTH,
    "operator": OPERATOR_AUTH,
    "other-customer": OTHER_CUSTOMER_AUTH,
    "other-provider": OTHER_PROVIDER_AUTH,
    "service": SERVICE_AUTH,  # the marketplace's server: creates bookings, is no party to them
    "anonymous": {},
}
# What each caller gets on a fresh, unpaid booking made by "customer" with "provider".
EXPECTED = {
    "customer": {
        "read": 200,
        "events": 200,
        "pay": 200,
        "report": 202,
        "cancel": 200,
        "emergency": 403,
    },
    "provider": {
        "read": 200,
        "events": 200,
        "pay": 403,
        "report": 403,  # only the customer pays, so only the customer reports a payment
        "cancel": 200,
        "emergency": 403,
    },
    # The operator may cancel and refund; an unpaid booking holds nothing to refund (409).
    "operator": {
        "read": 200,
        "events": 200,
        "pay": 403,
        "report": 202,
        "cancel": 200,
        "emergency": 409,
    },
    "other-customer": dict.fromkeys(ROUTES, 403),
    "other-provider": dict.fromkeys(ROUTES, 403),
    "service": dict.fromkeys(ROUTES, 403),
    "anonymous": dict.fromkeys(ROUTES, 401),
}


def url_for(route: str, booking_id: str) -> str:
    suffix = ROUTES[route][1]
    if suffix.startswith("!admin"):
        return f"/admin/bookings/{booking_id}{suffix.removeprefix('!admin')}"
    return f"/bookings/{booking_id}{suffix}"


async def test_authorization_matrix(client: httpx.AsyncClient) -> None:
    failures: list[str] = []
    for role, auth in ROLES.items():
        for route, (method, _, body) in ROUTES.items():
            created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
            booking = created.json()
            response = await client.request(
                method, url_for(route, booking["id"]), json=body, headers=auth
            )
            expected = EXPECTED[role][route]
            if response.status_code != expected:
                failures.append(
                    f"{role} {route}: {response.status_code} != {expected} {response.text}"
                )
            if response.status_code in (401, 403):
                leaked = [
                    value
                    for value in (booking["customer_wallet"], booking["chain_booking_id"], "25.5")
                    if value in response.text
                ]
                if leaked:
                    failures.append(f"{role} {route} leaked {leaked}")
    assert not failures, "\n".join(failures)


async def test_listing_never_shows_other_parties_bookings(client: httpx.AsyncClient) -> None:
    mine = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
    for auth in (OTHER_CUSTOMER_AUTH, OTHER_PROVIDER_AUTH):
        listing = await client.get("/bookings", headers=auth)
        assert listing.status_code == 200
        assert listing.json()["items"] == []
        assert mine.json()["id"] not in listing.text
    as_service = await client.get("/bookings", headers=SERVICE_AUTH)
    assert as_service.status_code == 403
    assert mine.json()["id"] not in as_service.text


async def test_stream_follows_the_same_matrix(factory: ApiFactory, worker: FakeChain) -> None:
    allowed = {"customer", "provider", "operator"}
    failures: list[str] = []
    async with (
        asyncio.timeout(60),  # a guard against a hung stream, not a speed check
        running_server(factory.app()) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        booking = created.json()
        for role, auth in ROLES.items():
            expected = 200 if role in allowed else 401 if role == "anonymous" else 403
            url = f"/bookings/{booking['id']}/stream"
            async with client.stream("GET", url, headers=auth) as response:
                text = "" if response.status_code == 200 else (await response.aread()).decode()
            if response.status_code != expected:
                failures.append(f"{role} stream: {response.status_code} != {expected} {text}")
            if booking["customer_wallet"] in text or booking["chain_booking_id"] in text:
                failures.append(f"{role} stream leaked the booking: {text}")
    assert not failures, "\n".join(failures)
