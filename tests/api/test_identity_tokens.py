"""Tokens that carry only `sub` (Privy): role and wallets from the party directory, over a real
JWKS on a loopback port, through the whole API (real Postgres and Temporal)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from api.auth import mint_token
from db.directory_memory import InMemoryDirectory
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER,
    OTHER_CUSTOMER,
    OTHER_PROVIDER,
    PROVIDER,
    booking_body,
    serve,
)
from tests.api.jwks import APP_ID, ISSUER, bearer, es256_key, privy_token, serve_jwks
from tests.api.siwe_helpers import OTHER_CUSTOMER_KEY, sign, siwe_message

pytestmark = pytest.mark.integration

ALICE = "did:privy:alice0000000000000000001"
BOB = "did:privy:bob00000000000000000000002"
DANA = "did:privy:dana0000000000000000000003"
MARKETPLACE_CLIENT = "marketplace@clients"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return es256_key()


@pytest.fixture(scope="module")
def jwks_url(key: ec.EllipticCurvePrivateKey) -> Iterator[str]:
    with serve_jwks(key) as url:
        yield url


@dataclass
class Marketplace:
    client: httpx.AsyncClient
    key: ec.EllipticCurvePrivateKey
    app: FastAPI

    def as_user(self, sub: str, **claims: Any) -> dict[str, str]:
        return bearer(privy_token(self.key, sub, **claims))

    async def create(self, **overrides: object) -> str:
        service = self.as_user(MARKETPLACE_CLIENT)
        response = await self.client.post(
            "/bookings", json=booking_body(**overrides), headers=service
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
async def marketplace(
    factory: ApiFactory, worker: FakeChain, jwks_url: str, key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[Marketplace]:
    directory = InMemoryDirectory()
    # Alice pays from CUSTOMER and is paid at OTHER_PROVIDER: a customer of one booking and
    # the provider of another. Bob is a provider.
    directory.add("u-alice", subject=ALICE, wallets=(CUSTOMER, OTHER_PROVIDER))
    directory.add("u-bob", subject=BOB, wallets=(PROVIDER,))
    # Dana's row has no wallet: she links one with Sign-In with Ethereum.
    directory.add("u-dana", subject=DANA)
    settings = {
        "jwks_url": jwks_url,
        "jwt_algorithm": "ES256",
        "jwt_audience": APP_ID,
        "jwt_issuer": ISSUER,
        "jwt_service_subjects": [MARKETPLACE_CLIENT],
    }
    app = factory.app(settings=settings)
    async with serve(app) as client:
        app.state.bookme.directory = directory
        yield Marketplace(client=client, key=key, app=app)


async def test_a_known_subject_acts_as_customer_or_provider_by_the_booking(
    marketplace: Marketplace,
) -> None:
    mine = await marketplace.create()  # Alice (CUSTOMER) books Bob (PROVIDER)
    theirs = await marketplace.create(
        customer_id="u-carol", customer_wallet=OTHER_CUSTOMER, provider_wallet=OTHER_PROVIDER
    )
    alice, bob = marketplace.as_user(ALICE), marketplace.as_user(BOB)
    client = marketplace.client

    paid = await client.post(f"/bookings/{mine}/payment-authorization", headers=alice)
    assert paid.status_code == 200, paid.text
    assert paid.json()["authorization"]["customer"] == CUSTOMER
    # On the booking where she is the provider, she cannot pay, but she sees it.
    refused = await client.post(f"/bookings/{theirs}/payment-authorization", headers=alice)
    assert (refused.status_code, refused.json()["code"]) == (403, "wrong_caller")
    assert (await client.get(f"/bookings/{theirs}", headers=alice)).status_code == 200
    listed = await client.get("/bookings", headers=alice)
    assert {b["id"] for b in listed.json()["items"]} == {mine, theirs}
    as_provider = await client.get("/bookings", params={"provider": OTHER_PROVIDER}, headers=alice)
    assert [b["id"] for b in as_provider.json()["items"]] == [theirs]
    snooping = await client.get("/bookings", params={"customer": OTHER_CUSTOMER}, headers=alice)
    assert (snooping.status_code, snooping.json()["code"]) == (403, "not_your_wallet")

    # Bob is the provider of the first booking only.
    assert (await client.get(f"/bookings/{mine}", headers=bob)).status_code == 200
    hidden = await client.get(f"/bookings/{theirs}", headers=bob)
    assert (hidden.status_code, hidden.json()["code"]) == (403, "not_a_party")
    bob_pays = await client.post(f"/bookings/{mine}/payment-authorization", headers=bob)
    assert (bob_pays.status_code, bob_pays.json()["code"]) == (403, "wrong_caller")
    assert [b["id"] for b in (await client.get("/bookings", headers=bob)).json()["items"]] == [mine]


async def test_an_unknown_subject_is_403_unknown_user(marketplace: Marketplace) -> None:
    response = await marketplace.client.get(
        "/bookings", headers=marketplace.as_user("did:privy:nobody")
    )
    assert (response.status_code, response.json()["code"]) == (403, "unknown_user")


@pytest.mark.parametrize(
    "claims",
    [
        {"audience": "another-app"},
        {"issuer": "https://auth.evil.example"},
        {"exp": 1},
    ],
)
async def test_another_apps_issuer_or_expired_tokens_are_401(
    marketplace: Marketplace, claims: dict[str, object]
) -> None:
    response = await marketplace.client.get(
        "/bookings", headers=marketplace.as_user(ALICE, **claims)
    )
    assert response.status_code == 401
    assert response.json()["code"] in {"invalid_token", "token_expired"}


async def test_a_token_signed_by_another_key_or_with_hs256_is_refused(
    marketplace: Marketplace,
) -> None:
    forged = privy_token(es256_key(), ALICE)
    shared_secret = mint_token("a-secret-nobody-configured-0123456789", sub=ALICE, role="operator")
    for token in (forged, shared_secret):
        response = await marketplace.client.get("/bookings", headers=bearer(token))
        assert (response.status_code, response.json()["code"]) == (401, "invalid_token")


async def test_a_role_claim_is_still_honoured_and_a_missing_token_is_missing_token(
    marketplace: Marketplace,
) -> None:
    operator = marketplace.as_user("ops-1", role="operator")
    assert (await marketplace.client.get("/bookings", headers=operator)).status_code == 200
    missing = await marketplace.client.get("/bookings")
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_token")


async def test_a_user_without_a_wallet_links_one_by_siwe_and_then_pays_from_it(
    marketplace: Marketplace,
) -> None:
    state = marketplace.app.state.bookme
    state.settings = state.settings.model_copy(update={"require_wallet_proof": True})
    booking = await marketplace.create(customer_id="u-dana", customer_wallet=OTHER_CUSTOMER)
    dana, client = marketplace.as_user(DANA), marketplace.client
    hidden = await client.get(f"/bookings/{booking}", headers=dana)
    assert (hidden.status_code, hidden.json()["code"]) == (403, "not_a_party")

    nonce = (await client.post("/me/wallets/nonce", headers=dana)).json()["nonce"]
    message = siwe_message(OTHER_CUSTOMER, nonce)
    body = {"message": message, "signature": sign(message, OTHER_CUSTOMER_KEY)}
    assert (await client.post("/me/wallets", json=body, headers=dana)).status_code == 201

    assert (await client.get(f"/bookings/{booking}", headers=dana)).status_code == 200
    paid = await client.post(f"/bookings/{booking}/payment-authorization", headers=dana)
    assert paid.status_code == 200, paid.text
    # Alice's wallet is in the users table but was never proven: no authorization for her.
    unproven = await marketplace.create()
    alice = marketplace.as_user(ALICE)
    refused = await client.post(f"/bookings/{unproven}/payment-authorization", headers=alice)
    assert (refused.status_code, refused.json()["code"]) == (403, "wallet_not_proven")
