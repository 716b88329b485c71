"""POST /bookings: creation through the workflow, validation, idempotency, who may create."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from chain.eip712 import chain_booking_id
from tests.api.helpers import (
    CUSTOMER,
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    PROVIDER,
    PROVIDER_AUTH,
    booking_body,
    serve,
)

pytestmark = pytest.mark.integration


async def test_create_returns_the_recorded_booking(client: httpx.AsyncClient) -> None:
    response = await client.post("/bookings", json=booking_body(), headers=CUSTOMER_AUTH)
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "PENDING_PAYMENT"
    assert booking["amount"] == "25.5"
    assert booking["amount_units"] == "25500000"
    assert booking["customer_wallet"] == CUSTOMER
    assert booking["provider_wallet"] == PROVIDER
    assert booking["customer_id"] == "cust-1"
    assert booking["platform_fee_bps"] == 1000
    assert booking["chain_booking_id"] == chain_booking_id(uuid.UUID(booking["id"]))
    assert booking["workflow_id"] == f"booking-{booking['id']}"
    assert response.headers["Location"] == f"/bookings/{booking['id']}"

    detail = await client.get(f"/bookings/{booking['id']}", headers=CUSTOMER_AUTH)
    assert detail.status_code == 200
    assert detail.json()["live"]["status"] == "PENDING_PAYMENT"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "1.0000001"}, "body.amount"),
        ({"amount": 25.5}, "body.amount"),
        ({"amount": "0"}, "body.amount"),
        ({"amount": "100000.000001"}, "body.amount"),  # over the default cap
        ({"customer_wallet": CUSTOMER.lower()}, "body.customer_wallet"),
        ({"provider_wallet": CUSTOMER}, "body"),
        ({"scheduled_at": "2020-01-01T00:00:00Z"}, "body.scheduled_at"),
        ({"scheduled_at": "2031-01-01T00:00:00"}, "body.scheduled_at"),
        ({"unexpected": 1}, "body.unexpected"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, overrides: dict[str, object], field: str
) -> None:
    response = await client.post("/bookings", json=booking_body(**overrides), headers=CUSTOMER_AUTH)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "validation_error"
    assert any(d["field"] == field for d in error["details"]), error
    assert error["message"]


async def test_malformed_json_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/bookings",
        content=b"{not json",
        headers={**CUSTOMER_AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_idempotency_key_replays_and_conflicts(client: httpx.AsyncClient) -> None:
    body = booking_body()
    headers = {**CUSTOMER_AUTH, "Idempotency-Key": "order-42"}
    first = await client.post("/bookings", json=body, headers=headers)
    second = await client.post("/bookings", json=body, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]

    other = await client.post("/bookings", json=booking_body(amount="30"), headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"

    # Keys are per user: another customer's identical key is another booking.
    theirs = await client.post(
        "/bookings",
        json=booking_body(customer_wallet="0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
        headers={**OTHER_CUSTOMER_AUTH, "Idempotency-Key": "order-42"},
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]

    listing = await client.get("/bookings", headers=CUSTOMER_AUTH)
    assert [b["id"] for b in listing.json()["items"]] == [first.json()["id"]]


async def test_replay_after_the_booking_time_passed_returns_the_booking(
    client: httpx.AsyncClient,
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    body = booking_body(scheduled_at=(soon + timedelta(seconds=1)).isoformat())
    headers = {**CUSTOMER_AUTH, "Idempotency-Key": "order-late-retry"}
    first = await client.post("/bookings", json=body, headers=headers)
    assert first.status_code == 201, first.text
    # The client's retry arrives after the appointment time (a long outage on its side).
    passed = soon + timedelta(seconds=1.2) - datetime.now(UTC)
    await asyncio.sleep(max(0.0, passed.total_seconds()))
    retry = await client.post("/bookings", json=body, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    # A new booking for that time is still refused.
    fresh = await client.post(
        "/bookings", json=body, headers={**CUSTOMER_AUTH, "Idempotency-Key": "order-new"}
    )
    assert fresh.status_code == 422
    assert fresh.json()["details"][0]["field"] == "body.scheduled_at"


async def test_bad_idempotency_key_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/bookings", json=booking_body(), headers={**CUSTOMER_AUTH, "Idempotency-Key": "x" * 300}
    )
    assert response.status_code == 422


async def test_authentication_is_required(client: httpx.AsyncClient) -> None:
    missing = await client.post("/bookings", json=booking_body())
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["code"] == "missing_token"
    garbage = await client.post(
        "/bookings", json=booking_body(), headers={"Authorization": "Bearer abc.def.ghi"}
    )
    assert garbage.status_code == 401
    assert garbage.json()["code"] == "invalid_token"


async def test_only_the_customer_themselves_or_an_operator_create(
    client: httpx.AsyncClient,
) -> None:
    as_provider = await client.post("/bookings", json=booking_body(), headers=PROVIDER_AUTH)
    assert as_provider.status_code == 403
    for_someone_else = await client.post(
        "/bookings", json=booking_body(), headers=OTHER_CUSTOMER_AUTH
    )
    assert for_someone_else.status_code == 403
    assert for_someone_else.json()["code"] == "not_your_wallet"

    no_customer_id = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
    assert no_customer_id.status_code == 422
    by_operator = await client.post(
        "/bookings", json=booking_body(customer_id="cust-1"), headers=OPERATOR_AUTH
    )
    assert by_operator.status_code == 201
    assert by_operator.json()["customer_id"] == "cust-1"


async def test_cap_is_configurable(factory, worker) -> None:
    app = factory.app(settings={"max_booking_amount_units": 10_000_000})
    async with serve(app) as client:
        over = await client.post(
            "/bookings", json=booking_body(amount="10.01"), headers=CUSTOMER_AUTH
        )
        assert over.status_code == 422
        assert "10 USDC" in over.json()["message"]
        at_cap = await client.post(
            "/bookings", json=booking_body(amount="10"), headers=CUSTOMER_AUTH
        )
        assert at_cap.status_code == 201


async def test_schedule_must_be_in_the_future(client: httpx.AsyncClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await client.post(
        "/bookings", json=booking_body(scheduled_at=past), headers=CUSTOMER_AUTH
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.scheduled_at"
