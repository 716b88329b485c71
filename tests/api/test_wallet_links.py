"""Linking a wallet with Sign-In with Ethereum over HTTP (real Postgres), and paying only from a
proven wallet when the setting requires it (real Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.identity_models import SiweNonce
from db.wallet_links import consume_nonce, issue_nonce
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER,
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    SERVICE_AUTH,
    booking_body,
    serve,
    token,
)
from tests.api.siwe_helpers import CUSTOMER_KEY, sign, siwe_message

pytestmark = pytest.mark.integration


async def nonce(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post("/me/wallets/nonce", headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["domain"], body["chain_id"]) == ("localhost", 31337)
    return str(body["nonce"])


async def link(
    client: httpx.AsyncClient, auth: dict[str, str], message: str, key: str = CUSTOMER_KEY
) -> httpx.Response:
    body = {"message": message, "signature": sign(message, key)}
    return await client.post("/me/wallets", json=body, headers=auth)


async def test_a_user_links_a_wallet_once_per_nonce_and_a_wallet_has_one_owner(
    factory: ApiFactory,
) -> None:
    async with serve(factory.app()) as client:
        message = siwe_message(CUSTOMER, await nonce(client, CUSTOMER_AUTH))
        linked = await link(client, CUSTOMER_AUTH, message)
        assert linked.status_code == 201, linked.text
        assert linked.json()["address"] == CUSTOMER
        listed = await client.get("/me/wallets", headers=CUSTOMER_AUTH)
        assert listed.json() == {"items": [CUSTOMER]}

        replayed = await link(client, CUSTOMER_AUTH, message)
        assert (replayed.status_code, replayed.json()["code"]) == (409, "siwe_nonce_invalid")
        # Someone else's nonce is no good either, nor someone else's wallet.
        theirs = siwe_message(CUSTOMER, await nonce(client, OTHER_CUSTOMER_AUTH))
        stolen_nonce = await link(client, CUSTOMER_AUTH, theirs)
        assert (stolen_nonce.status_code, stolen_nonce.json()["code"]) == (
            409,
            "siwe_nonce_invalid",
        )
        taken = await link(client, OTHER_CUSTOMER_AUTH, theirs)
        assert (taken.status_code, taken.json()["code"]) == (409, "wallet_linked_elsewhere")

        gone = await client.delete(f"/me/wallets/{CUSTOMER}", headers=CUSTOMER_AUTH)
        assert gone.status_code == 204
        assert (await client.get("/me/wallets", headers=CUSTOMER_AUTH)).json() == {"items": []}


async def test_a_message_for_another_domain_or_badly_signed_is_422_and_keeps_the_nonce(
    factory: ApiFactory,
) -> None:
    async with serve(factory.app()) as client:
        fresh = await nonce(client, CUSTOMER_AUTH)
        phished = await link(client, CUSTOMER_AUTH, siwe_message(CUSTOMER, fresh, domain="evil.io"))
        assert (phished.status_code, phished.json()["code"]) == (422, "siwe_invalid")
        good = siwe_message(CUSTOMER, fresh)
        forged = await client.post(
            "/me/wallets",
            json={"message": good, "signature": sign(good + "x", CUSTOMER_KEY)},
            headers=CUSTOMER_AUTH,
        )
        assert (forged.status_code, forged.json()["details"][0]["field"]) == (
            422,
            "body.signature",
        )
        assert (await link(client, CUSTOMER_AUTH, good)).status_code == 201
        # Operators and the marketplace's server hold no wallets of their own here.
        for auth in (OPERATOR_AUTH, SERVICE_AUTH):
            refused = await client.post("/me/wallets/nonce", headers=auth)
            assert (refused.status_code, refused.json()["code"]) == (403, "party_only")


async def test_paying_needs_a_proven_wallet_when_required(
    factory: ApiFactory, worker: FakeChain
) -> None:
    async with serve(factory.app(settings={"require_wallet_proof": True})) as client:
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        url = f"/bookings/{created.json()['id']}/payment-authorization"
        refused = await client.post(url, headers=CUSTOMER_AUTH)
        assert (refused.status_code, refused.json()["code"]) == (403, "wallet_not_proven")
        # A user whose token claims the same wallet does not hold it because another proved it.
        message = siwe_message(CUSTOMER, await nonce(client, CUSTOMER_AUTH))
        assert (await link(client, CUSTOMER_AUTH, message)).status_code == 201
        assert (await client.post(url, headers=CUSTOMER_AUTH)).status_code == 200
        impostor = token("cust-9", "customer", CUSTOMER)
        stolen = await client.post(url, headers=impostor)
        assert (stolen.status_code, stolen.json()["code"]) == (403, "wallet_not_proven")


async def test_unused_nonces_expire_and_are_swept_by_the_next_issue(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ttl = timedelta(minutes=10)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with sessions.begin() as session:
        stale = await issue_nonce(session, "cust-1", now=long_ago, ttl=ttl)
    async with sessions.begin() as session:
        assert not await consume_nonce(session, "cust-1", stale.nonce, now=datetime.now(UTC))
        fresh = await issue_nonce(session, "someone-else", now=datetime.now(UTC), ttl=ttl)
    async with sessions() as session:
        left = set((await session.scalars(select(SiweNonce.nonce))).all())
    assert left == {fresh.nonce}
