"""POST /bookings: who may decide a booking's terms, creation through the workflow, validation,
idempotency."""

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
    OTHER_CUSTOMER,
    OTHER_CUSTOMER_AUTH,
    PROVIDER,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
    serve,
)

pytestmark = pytest.mark.integration

ACCOMPLICE = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
SECOND_WALLET = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
TRUSTED = pytest.mark.parametrize("trusted", [SERVICE_AUTH, OPERATOR_AUTH], ids=["service", "op"])


async def assert_refused(
    client: httpx.AsyncClient, body: dict[str, object], refused: list[str]
) -> None:
    """The customer gets a 403 naming exactly the fields it may not set, and nothing starts."""
    response = await client.post("/bookings", json=body, headers=CUSTOMER_AUTH)
    assert response.status_code == 403, response.text
    error = response.json()
    assert error["code"] == "marketplace_only"
    assert "bookings are created by the marketplace" in error["message"]
    assert [d["field"] for d in error["details"]] == [f"body.{name}" for name in refused]
    for name in refused:
        assert name in error["message"]
    listing = await client.get("/bookings", headers=OPERATOR_AUTH)
    assert listing.json()["items"] == []


# --- the attacks: a customer deciding its own booking's terms --------------------------------


def customer_body(**overrides: object) -> dict[str, object]:
    """The body a customer used to send for itself (no customer_id: it booked as itself)."""
    body = booking_body(**overrides)
    del body["customer_id"]
    return body


async def test_a_customer_cannot_set_a_1_usdc_price(client: httpx.AsyncClient) -> None:
    await assert_refused(
        client, customer_body(amount="1"), ["amount", "provider_wallet", "customer_wallet"]
    )


async def test_a_customer_cannot_name_an_accomplice_as_the_providers_wallet(
    client: httpx.AsyncClient,
) -> None:
    await assert_refused(
        client,
        customer_body(provider_wallet=ACCOMPLICE),
        ["amount", "provider_wallet", "customer_wallet"],
    )


@pytest.mark.parametrize("inviter", [SECOND_WALLET, CUSTOMER], ids=["second-wallet", "itself"])
async def test_a_customer_cannot_name_its_own_wallet_as_inviter(
    client: httpx.AsyncClient, inviter: str
) -> None:
    await assert_refused(
        client,
        customer_body(inviter_wallet=inviter),
        ["amount", "provider_wallet", "inviter_wallet", "customer_wallet"],
    )


async def test_a_customer_cannot_book_for_another_customers_wallet(
    client: httpx.AsyncClient,
) -> None:
    await assert_refused(
        client,
        booking_body(customer_wallet=OTHER_CUSTOMER, customer_id="cust-2"),
        ["amount", "provider_wallet", "customer_id", "customer_wallet"],
    )


async def test_a_customer_with_no_terms_is_told_the_marketplace_creates_bookings(
    client: httpx.AsyncClient,
) -> None:
    body = {k: booking_body()[k] for k in ("service_id", "provider_id", "scheduled_at")}
    for auth in (CUSTOMER_AUTH, PROVIDER_AUTH):
        # Refused before the body is validated: never a 422 asking for the missing fields.
        response = await client.post("/bookings", json=body, headers=auth)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "marketplace_only"
        assert "bookings are created by the marketplace" in response.json()["message"]
        assert response.json()["details"] == []


# --- the trusted caller decides, the named customer acts ------------------------------------


@TRUSTED
async def test_the_trusted_caller_creates_and_the_named_customer_pays(
    client: httpx.AsyncClient, trusted: dict[str, str]
) -> None:
    response = await client.post(
        "/bookings", json=booking_body(inviter_wallet=SECOND_WALLET), headers=trusted
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "PENDING_PAYMENT"
    assert (booking["customer_id"], booking["customer_wallet"]) == ("cust-1", CUSTOMER)
    assert (booking["provider_wallet"], booking["inviter_wallet"]) == (PROVIDER, SECOND_WALLET)
    assert booking["amount_units"] == "25500000"
    assert booking["inviter_fee_bps"] == 500

    url = f"/bookings/{booking['id']}/payment-authorization"
    signed = await client.post(url, headers=CUSTOMER_AUTH)
    assert signed.status_code == 200, signed.text
    authorization = signed.json()["authorization"]
    assert authorization["customer"] == CUSTOMER
    assert authorization["provider"] == PROVIDER
    assert authorization["inviter"] == SECOND_WALLET
    assert authorization["amount"] == "25500000"
    # Another customer's token cannot act on it; the creator is no party either.
    assert (await client.post(url, headers=OTHER_CUSTOMER_AUTH)).status_code == 403
    assert (await client.post(url, headers=SERVICE_AUTH)).status_code == 403


@TRUSTED
@pytest.mark.parametrize("missing", ["customer_wallet", "customer_id"])
async def test_a_trusted_caller_must_name_the_customer(
    client: httpx.AsyncClient, trusted: dict[str, str], missing: str
) -> None:
    body = booking_body()
    del body[missing]
    response = await client.post("/bookings", json=body, headers=trusted)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [f"body.{missing}"]


async def test_create_returns_the_recorded_booking(client: httpx.AsyncClient) -> None:
    response = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "PENDING_PAYMENT"
    assert booking["amount"] == "25.5"
    assert booking["amount_units"] == "25500000"
    assert booking["customer_wallet"] == CUSTOMER
    assert booking["provider_wallet"] == PROVIDER
    assert booking["inviter_wallet"] is None
    assert booking["customer_id"] == "cust-1"
    assert booking["platform_fee_bps"] == 1000
    assert booking["chain_booking_id"] == chain_booking_id(uuid.UUID(booking["id"]))
    assert booking["workflow_id"] == f"booking-{booking['id']}"
    assert response.headers["Location"] == f"/bookings/{booking['id']}"

    detail = await client.get(f"/bookings/{booking['id']}", headers=CUSTOMER_AUTH)
    assert detail.status_code == 200
    assert detail.json()["live"]["status"] == "PENDING_PAYMENT"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "1.0000001"}, "body.amount"),
        ({"amount": 25.5}, "body.amount"),
        ({"amount": "0"}, "body.amount"),
        ({"amount": "100000.000001"}, "body.amount"),  # over the default cap
        ({"customer_wallet": CUSTOMER.lower()}, "body.customer_wallet"),
        ({"provider_wallet": CUSTOMER}, "body"),
        ({"inviter_wallet": PROVIDER}, "body"),
        ({"customer_id": ""}, "body.customer_id"),
        ({"scheduled_at": "2020-01-01T00:00:00Z"}, "body.scheduled_at"),
        ({"scheduled_at": "2031-01-01T00:00:00"}, "body.scheduled_at"),
        ({"unexpected": 1}, "body.unexpected"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, overrides: dict[str, object], field: str
) -> None:
    response = await client.post("/bookings", json=booking_body(**overrides), headers=SERVICE_AUTH)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "validation_error"
    assert any(d["field"] == field for d in error["details"]), error
    assert error["message"]


@pytest.mark.parametrize("auth", [SERVICE_AUTH, CUSTOMER_AUTH], ids=["service", "customer"])
async def test_malformed_json_is_422_not_500(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.post(
        "/bookings",
        content=b"{not json",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_cap_is_configurable(factory, worker) -> None:
    app = factory.app(settings={"max_booking_amount_units": 10_000_000})
    async with serve(app) as client:
        over = await client.post(
            "/bookings", json=booking_body(amount="10.01"), headers=SERVICE_AUTH
        )
        assert over.status_code == 422
        assert "10 USDC" in over.json()["message"]
        at_cap = await client.post(
            "/bookings", json=booking_body(amount="10"), headers=SERVICE_AUTH
        )
        assert at_cap.status_code == 201


async def test_schedule_must_be_in_the_future(client: httpx.AsyncClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await client.post(
        "/bookings", json=booking_body(scheduled_at=past), headers=SERVICE_AUTH
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.scheduled_at"


# --- idempotency -----------------------------------------------------------------------------


async def test_idempotency_key_replays_and_conflicts_per_caller(
    client: httpx.AsyncClient,
) -> None:
    body = booking_body()
    headers = {**SERVICE_AUTH, "Idempotency-Key": "order-42"}
    first = await client.post("/bookings", json=body, headers=headers)
    second = await client.post("/bookings", json=body, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]

    other = await client.post("/bookings", json=booking_body(amount="30"), headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    # The same key for another customer is the same key reused: a conflict, not a new booking.
    someone_else = booking_body(customer_id="cust-2", customer_wallet=OTHER_CUSTOMER)
    reused = await client.post("/bookings", json=someone_else, headers=headers)
    assert reused.status_code == 409

    # Keys are per caller: an operator's identical key is another booking.
    theirs = await client.post(
        "/bookings", json=body, headers={**OPERATOR_AUTH, "Idempotency-Key": "order-42"}
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]

    listing = await client.get("/bookings", headers=CUSTOMER_AUTH)
    assert sorted(b["id"] for b in listing.json()["items"]) == sorted(
        [first.json()["id"], theirs.json()["id"]]
    )


async def test_replay_after_the_booking_time_passed_returns_the_booking(
    client: httpx.AsyncClient,
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    body = booking_body(scheduled_at=(soon + timedelta(seconds=1)).isoformat())
    headers = {**SERVICE_AUTH, "Idempotency-Key": "order-late-retry"}
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
        "/bookings", json=body, headers={**SERVICE_AUTH, "Idempotency-Key": "order-new"}
    )
    assert fresh.status_code == 422
    assert fresh.json()["details"][0]["field"] == "body.scheduled_at"


async def test_bad_idempotency_key_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/bookings", json=booking_body(), headers={**SERVICE_AUTH, "Idempotency-Key": "x" * 300}
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
