"""Signed authorizations, transaction reports, cancellation and operator refunds over HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from temporalio.client import Client

from chain.eip712 import BookingAuthorization, Eip712Domain
from chain.signing import booking_typed_data
from tests.api.fakes import SIGNER_ADDRESS
from tests.api.helpers import (
    CUSTOMER,
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    OTHER_PROVIDER_AUTH,
    PROVIDER,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
)
from workflows import BookingWorkflow
from workflows.types import ChainEventKind, ChainEventSignal, EventIdentity, PaymentFields

pytestmark = pytest.mark.integration


async def create(client: httpx.AsyncClient, **overrides: object) -> dict[str, object]:
    response = await client.post("/bookings", json=booking_body(**overrides), headers=SERVICE_AUTH)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def confirm_payment(
    temporal_client: Client, client: httpx.AsyncClient, booking: dict[str, object]
) -> None:
    """Deliver the chain's payment event the way the listener does, then wait for PAID."""
    event = ChainEventSignal(
        kind=ChainEventKind.PAYMENT,
        identity=EventIdentity(
            chain_id=31337,
            tx_hash="0x" + "11" * 32,
            log_index=0,
            block_number=10,
            block_hash="0x" + "22" * 32,
        ),
        chain_booking_id=str(booking["chain_booking_id"]),
        payment=PaymentFields(
            customer=CUSTOMER,
            provider=PROVIDER,
            inviter="0x0000000000000000000000000000000000000000",
            amount=int(str(booking["amount_units"])),
            platform_fee_rate=1000,
            inviter_fee_rate=0,
        ),
    )
    handle = temporal_client.get_workflow_handle(str(booking["workflow_id"]))
    await handle.signal(BookingWorkflow.payment_confirmed, event)
    for _ in range(200):
        row = await client.get(f"/bookings/{booking['id']}", headers=OPERATOR_AUTH)
        if row.json()["status"] == "PAID":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("booking never became PAID")


async def test_payment_authorization_is_signed_by_the_signer(client: httpx.AsyncClient) -> None:
    booking = await create(client)
    response = await client.post(
        f"/bookings/{booking['id']}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"authorization", "signature", "contract", "chainId", "expiresAt"}
    auth = body["authorization"]
    assert auth["bookingId"] == booking["chain_booking_id"]
    assert auth["customer"] == CUSTOMER
    assert auth["provider"] == PROVIDER
    assert auth["amount"] == "25500000"
    assert auth["platformFeeRate"] == "1000"

    typed = booking_typed_data(
        Eip712Domain(chain_id=body["chainId"], verifying_contract=body["contract"]),
        BookingAuthorization(
            booking_id=auth["bookingId"],
            customer=auth["customer"],
            provider=auth["provider"],
            inviter=auth["inviter"],
            amount=int(auth["amount"]),
            platform_fee_rate=int(auth["platformFeeRate"]),
            inviter_fee_rate=int(auth["inviterFeeRate"]),
            release_time=int(auth["releaseTime"]),
            expiry=int(auth["expiry"]),
            nonce=int(auth["nonce"]),
        ),
    )
    signer = Account.recover_message(
        encode_typed_data(full_message=typed), signature=body["signature"]
    )
    assert signer == SIGNER_ADDRESS

    again = await client.post(
        f"/bookings/{booking['id']}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert again.json()["authorization"]["nonce"] == auth["nonce"]  # still valid: reused


async def test_only_the_customer_gets_a_payment_authorization(client: httpx.AsyncClient) -> None:
    booking = await create(client)
    url = f"/bookings/{booking['id']}/payment-authorization"
    assert (await client.post(url, headers=PROVIDER_AUTH)).status_code == 403
    assert (await client.post(url, headers=OTHER_CUSTOMER_AUTH)).status_code == 403
    assert (await client.post(url, headers=OPERATOR_AUTH)).status_code == 403
    assert (await client.post(url)).status_code == 401
    unknown = await client.post(
        "/bookings/00000000-0000-4000-8000-000000000000/payment-authorization",
        headers=CUSTOMER_AUTH,
    )
    assert unknown.status_code == 404
    not_uuid = await client.post("/bookings/nope/payment-authorization", headers=CUSTOMER_AUTH)
    assert not_uuid.status_code == 422


async def test_report_transaction(client: httpx.AsyncClient) -> None:
    booking = await create(client)
    url = f"/bookings/{booking['id']}/transactions"
    tx = "0x" + "ab" * 32
    accepted = await client.post(
        url, json={"tx_hash": tx, "kind": "payment"}, headers=CUSTOMER_AUTH
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["tx_hash"] == tx
    assert accepted.json()["monitoring_until"]

    wrong_state = await client.post(
        url, json={"tx_hash": tx, "kind": "completion"}, headers=CUSTOMER_AUTH
    )
    assert wrong_state.status_code == 409
    assert wrong_state.json()["code"] == "wrong_state"
    assert "PENDING_PAYMENT" in wrong_state.json()["message"]
    not_the_payer = await client.post(
        url, json={"tx_hash": tx, "kind": "payment"}, headers=PROVIDER_AUTH
    )
    assert not_the_payer.status_code == 403
    assert not_the_payer.json()["code"] == "wrong_caller"

    bad_hash = await client.post(
        url, json={"tx_hash": "0x12", "kind": "payment"}, headers=CUSTOMER_AUTH
    )
    assert bad_hash.status_code == 422
    outsider = await client.post(
        url, json={"tx_hash": tx, "kind": "payment"}, headers=OTHER_PROVIDER_AUTH
    )
    assert outsider.status_code == 403


async def test_a_providers_fake_completion_report_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, temporal_client: Client
) -> None:
    """Review H1: a made-up completion hash used to freeze the customer's cancellation."""
    booking = await create(client)
    await confirm_payment(temporal_client, client, booking)
    fake = await client.post(
        f"/bookings/{booking['id']}/transactions",
        json={"tx_hash": "0x" + "11" * 32, "kind": "completion"},
        headers=PROVIDER_AUTH,
    )
    assert fake.status_code == 403, fake.text
    assert fake.json()["code"] == "wrong_caller"
    # The customer's own report opens a window but does not move the status either.
    reported = await client.post(
        f"/bookings/{booking['id']}/transactions",
        json={"tx_hash": "0x" + "12" * 32, "kind": "completion"},
        headers=CUSTOMER_AUTH,
    )
    assert reported.status_code == 202, reported.text
    shown = await client.get(f"/bookings/{booking['id']}", headers=CUSTOMER_AUTH)
    assert shown.json()["status"] == "PAID"
    cancel = await client.post(
        f"/bookings/{booking['id']}/cancellation",
        json={"reason": "cannot make it"},
        headers=CUSTOMER_AUTH,
    )
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "PENDING_CANCELLATION"


async def test_cancelling_with_a_live_payment_authorization_waits_for_its_expiry(
    client: httpx.AsyncClient,
) -> None:
    """Review L6: the authorization in the customer's hand must not pay a cancelled booking."""
    booking = await create(client)
    auth = await client.post(
        f"/bookings/{booking['id']}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert auth.status_code == 200, auth.text
    url = f"/bookings/{booking['id']}/cancellation"
    response = await client.post(url, json={"reason": "changed my mind"}, headers=CUSTOMER_AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING_PAYMENT"
    assert body["cancelsAt"] is not None
    assert body["cancelsAt"] > auth.json()["expiresAt"]
    refused = await client.post(
        f"/bookings/{booking['id']}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert refused.status_code == 409
    assert "cancel" in refused.json()["message"]


async def test_cancelling_an_unpaid_booking_is_immediate(client: httpx.AsyncClient) -> None:
    booking = await create(client)
    url = f"/bookings/{booking['id']}/cancellation"
    response = await client.post(url, json={"reason": "changed my mind"}, headers=CUSTOMER_AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["authorization"] is None

    # The unpaid booking's workflow has finished: any further request is a 409.
    again = await client.post(url, json={"reason": "again"}, headers=PROVIDER_AUTH)
    assert again.status_code == 409
    assert again.json()["code"] == "booking_closed"
    empty = await client.post(url, json={"reason": ""}, headers=CUSTOMER_AUTH)
    assert empty.status_code == 422

    stored = await client.get(f"/bookings/{booking['id']}", headers=PROVIDER_AUTH)
    assert stored.json()["status"] == "CANCELLED"


async def test_cancelling_a_paid_booking_returns_a_signed_authorization(
    client: httpx.AsyncClient, temporal_client: Client
) -> None:
    booking = await create(client)
    await confirm_payment(temporal_client, client, booking)
    response = await client.post(
        f"/bookings/{booking['id']}/cancellation",
        json={"reason": "provider is ill"},
        headers=PROVIDER_AUTH,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING_CANCELLATION"
    auth = body["authorization"]
    assert auth["bookingId"] == booking["chain_booking_id"]
    assert auth["customerAmount"] == "25500000"  # a provider cancellation refunds in full
    assert auth["providerAmount"] == "0"
    assert auth["reason"] == "provider_cancelled"  # a code on chain; the words stay off it
    assert body["signature"].startswith("0x")
    assert body["chainId"] == 31337


async def test_emergency_cancel_is_operator_only(
    client: httpx.AsyncClient, temporal_client: Client
) -> None:
    booking = await create(client)
    url = f"/admin/bookings/{booking['id']}/emergency-cancel"
    body = {"reason": "stuck payment"}
    assert (await client.post(url, json=body, headers=CUSTOMER_AUTH)).status_code == 403
    assert (await client.post(url, json=body, headers=PROVIDER_AUTH)).status_code == 403
    assert (await client.post(url, json=body)).status_code == 401

    unpaid = await client.post(url, json=body, headers=OPERATOR_AUTH)
    assert unpaid.status_code == 409
    assert "holds no escrowed money" in unpaid.json()["message"]

    await confirm_payment(temporal_client, client, booking)
    refunded = await client.post(url, json=body, headers=OPERATOR_AUTH)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "PENDING_CANCELLATION"
    assert refunded.json()["tx_hash"].startswith("0x")

    missing = await client.post(
        "/admin/bookings/00000000-0000-4000-8000-000000000000/emergency-cancel",
        json=body,
        headers=OPERATOR_AUTH,
    )
    assert missing.status_code == 404


async def test_parties_read_and_outsiders_do_not(client: httpx.AsyncClient) -> None:
    booking = await create(client)
    for headers, expected in (
        (CUSTOMER_AUTH, 200),
        (PROVIDER_AUTH, 200),
        (OPERATOR_AUTH, 200),
        (OTHER_CUSTOMER_AUTH, 403),
        (OTHER_PROVIDER_AUTH, 403),
        ({}, 401),
    ):
        for path in ("", "/events"):
            response = await client.get(f"/bookings/{booking['id']}{path}", headers=headers)
            assert response.status_code == expected, (headers, path, response.text)
