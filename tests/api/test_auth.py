"""Bearer token verification: shared secret, JWKS, claims and refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from api.auth import ClaimMapping, Principal, Role, TokenVerifier, claimed_principal, mint_token
from api.errors import ServiceUnavailable, Unauthorized
from bookme.settings import Settings, SettingsError
from tests.api.jwks import serve_jwk_set

SECRET = "unit-test-secret-0123456789abcdef"
WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def hs_verifier(*, audience: str | None = None, issuer: str | None = None) -> TokenVerifier:
    return TokenVerifier(algorithm="HS256", secret=SECRET, audience=audience, issuer=issuer)


async def test_valid_token_gives_the_principal_with_a_checksummed_wallet() -> None:
    token = mint_token(SECRET, sub="u1", role="customer", wallet=WALLET.lower())
    principal = await hs_verifier().verify(token)
    assert principal == Principal(user_id="u1", role=Role.CUSTOMER, wallet=WALLET)


async def test_operator_needs_no_wallet() -> None:
    principal = await hs_verifier().verify(mint_token(SECRET, sub="op", role="operator"))
    assert principal.is_operator
    assert principal.wallet is None


async def test_the_marketplace_service_credential_needs_no_wallet_and_is_no_operator() -> None:
    principal = await hs_verifier().verify(mint_token(SECRET, sub="marketplace", role="service"))
    assert principal == Principal(user_id="marketplace", role=Role.SERVICE, wallet=None)
    assert principal.decides_booking_terms
    assert not principal.is_operator


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"sub": "u1", "role": "customer"}, "invalid_token"),  # no wallet
        ({"sub": "u1", "role": "admin", "wallet": WALLET}, "invalid_token"),
        ({"sub": "u1", "role": "customer", "wallet": "not-an-address"}, "invalid_token"),
        ({"role": "customer", "wallet": WALLET}, "invalid_token"),  # no sub
        ({"sub": "u1", "role": "customer", "wallet": WALLET, "exp": 1}, "token_expired"),
    ],
)
async def test_incomplete_or_expired_claims_are_401(claims: dict[str, object], code: str) -> None:
    claims = {"exp": int(time.time()) + 60, **claims}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized) as info:
        await hs_verifier().verify(token)
    assert info.value.code == code
    assert info.value.headers["WWW-Authenticate"] == "Bearer"


async def test_token_without_exp_is_refused() -> None:
    token = jwt.encode({"sub": "u1", "role": "operator"}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="exp"):
        await hs_verifier().verify(token)


async def test_wrong_secret_and_garbage_are_refused() -> None:
    token = mint_token("another-secret-of-sufficient-length!", sub="u1", role="operator")
    with pytest.raises(Unauthorized):
        await hs_verifier().verify(token)
    with pytest.raises(Unauthorized):
        await hs_verifier().verify("not.a.jwt")


async def test_audience_and_issuer_are_checked_when_configured() -> None:
    verifier = hs_verifier(audience="bookme", issuer="https://id.example")
    good = mint_token(
        SECRET, sub="u", role="operator", audience="bookme", issuer="https://id.example"
    )
    assert (await verifier.verify(good)).user_id == "u"
    for bad in (
        mint_token(SECRET, sub="u", role="operator", audience="other", issuer="https://id.example"),
        mint_token(SECRET, sub="u", role="operator", audience="bookme", issuer="https://evil"),
        mint_token(SECRET, sub="u", role="operator"),
    ):
        with pytest.raises(Unauthorized):
            await verifier.verify(bad)


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A real HTTP JWKS endpoint on a loopback port."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    with serve_jwk_set(jwk) as url:
        yield url


async def test_jwks_verifies_rs256_tokens(jwks_url: str, rsa_key: rsa.RSAPrivateKey) -> None:
    settings = Settings(jwks_url=jwks_url, jwt_algorithm="RS256")
    verifier = TokenVerifier.from_settings(settings)
    now = int(time.time())
    claims = {"sub": "p1", "role": "provider", "wallet": WALLET, "exp": now + 60}
    token = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "k1"})
    assert (await verifier.verify(token)).role is Role.PROVIDER

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(Unauthorized):
        await verifier.verify(forged)


async def test_jwks_refuses_hmac_tokens_signed_with_the_public_key(
    jwks_url: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier.from_settings(Settings(jwks_url=jwks_url, jwt_algorithm="RS256"))
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"sub": "x", "role": "operator", "exp": int(time.time()) + 60}
    # PyJWT itself refuses a PEM as an HMAC key; build the confused token by hand instead.
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode())
    signing_input = header + b"." + payload
    sig = jwt.utils.base64url_encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    with pytest.raises(Unauthorized):
        await verifier.verify((signing_input + b"." + sig).decode())


async def test_unreachable_jwks_is_503_not_401(tmp_path: Path) -> None:
    verifier = TokenVerifier(
        algorithm="RS256", jwks_client=jwt.PyJWKClient("http://127.0.0.1:9/jwks.json", timeout=2)
    )
    token = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(token)


def test_configuration_mistakes_are_refused() -> None:
    with pytest.raises(SettingsError):
        TokenVerifier.from_settings(
            Settings(jwks_url="https://id.example/jwks", jwt_algorithm="HS256")
        )
    with pytest.raises(SettingsError):
        TokenVerifier.from_settings(Settings(jwt_algorithm="RS256"))
    with pytest.raises(SettingsError):
        TokenVerifier(algorithm="HS256")


def test_default_settings_use_the_dev_secret() -> None:
    verifier = TokenVerifier.from_settings(Settings(jwt_secret=SecretStr(SECRET)))
    assert isinstance(verifier, TokenVerifier)


def test_party_rules_follow_the_role() -> None:
    customer = Principal(user_id="c", role=Role.CUSTOMER, wallet=WALLET)
    provider = Principal(user_id="p", role=Role.PROVIDER, wallet=WALLET)
    other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    assert customer.may_see(customer_wallet=WALLET.lower(), provider_wallet=other)
    assert not customer.may_see(customer_wallet=other, provider_wallet=WALLET)
    assert provider.may_see(customer_wallet=other, provider_wallet=WALLET)
    assert not provider.may_see(customer_wallet=WALLET, provider_wallet=other)
    operator = Principal(user_id="o", role=Role.OPERATOR, wallet=None)
    assert operator.may_see(customer_wallet=other, provider_wallet=other)
    # The marketplace's server decides bookings' terms but is no party: it sees none of them.
    service = Principal(user_id="m", role=Role.SERVICE, wallet=WALLET)
    assert not service.may_see(customer_wallet=WALLET, provider_wallet=WALLET)
    deciders = [p.decides_booking_terms for p in (customer, provider, operator, service)]
    assert deciders == [False, False, True, True]


async def test_dev_token_command_mints_a_token_the_api_accepts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.dev_token import main

    monkeypatch.setenv("BOOKME_JWT_SECRET", SECRET)
    monkeypatch.delenv("BOOKME_JWKS_URL", raising=False)
    assert main(["--sub", "alice", "--role", "customer", "--wallet", WALLET]) == 0
    principal = await hs_verifier().verify(capsys.readouterr().out.strip())
    assert principal == Principal(user_id="alice", role=Role.CUSTOMER, wallet=WALLET)
    assert main(["--sub", "marketplace", "--role", "service"]) == 0  # no wallet needed
    principal = await hs_verifier().verify(capsys.readouterr().out.strip())
    assert principal == Principal(user_id="marketplace", role=Role.SERVICE, wallet=None)
    with pytest.raises(SystemExit):
        main(["--sub", "bob", "--role", "provider"])  # no wallet
    monkeypatch.setenv("BOOKME_JWKS_URL", "https://id.example/jwks")
    with pytest.raises(SystemExit):
        main(["--sub", "alice", "--role", "operator"])


def test_a_marketplace_user_is_the_party_whose_wallet_they_hold() -> None:
    other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    third = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    user = Principal(user_id="u", role=Role.USER, wallet=WALLET, wallets=(WALLET, other))
    assert user.wallets == (WALLET, other)
    as_customer = {"customer_wallet": WALLET.lower(), "provider_wallet": third}
    as_provider = {"customer_wallet": third, "provider_wallet": other}
    assert user.acting_party(**as_customer) is Role.CUSTOMER
    assert user.acting_party(**as_provider) is Role.PROVIDER
    assert user.may_see(**as_provider)
    assert user.acting_party(customer_wallet=third, provider_wallet=third) is None
    assert not user.may_see(customer_wallet=third, provider_wallet=None)
    # Holding both sides of one booking names no single party: acting is refused.
    assert user.acting_party(customer_wallet=WALLET, provider_wallet=other) is None
    # A customer token never acts as provider, even holding the provider's wallet.
    customer = Principal(user_id="c", role=Role.CUSTOMER, wallet=other)
    assert customer.acting_party(**as_provider) is None
    walletless = Principal(user_id="w", role=Role.USER, wallet=None)
    assert not walletless.may_see(customer_wallet=None, provider_wallet=None)


async def test_claim_names_service_subjects_and_missing_roles_follow_the_mapping() -> None:
    mapping = ClaimMapping(
        role_claim="https://bookme.example/role",
        wallet_claim="https://bookme.example/wallet",
        service_subjects=frozenset({"client-1@clients"}),
    )
    verifier = TokenVerifier(algorithm="HS256", secret=SECRET, mapping=mapping)
    now = int(time.time())
    claims = {
        "sub": "p1",
        "exp": now + 60,
        "https://bookme.example/role": "provider",
        "https://bookme.example/wallet": WALLET,
    }
    principal = await verifier.verify(jwt.encode(claims, SECRET, algorithm="HS256"))
    assert (principal.role, principal.wallet) == (Role.PROVIDER, WALLET)
    service = jwt.encode({"sub": "client-1@clients", "exp": now + 60}, SECRET, algorithm="HS256")
    assert (await verifier.verify(service)).role is Role.SERVICE
    # Our default claim names mean nothing under this mapping: no role, so no principal alone.
    plain = mint_token(SECRET, sub="u", role="operator")
    assert claimed_principal(await verifier.verified_claims(plain), mapping) is None
    with pytest.raises(Unauthorized):
        await verifier.verify(plain)
    with pytest.raises(ValueError, match="JWT_DEFAULT_ROLE"):
        Settings(_env_file=None, jwt_default_role="operator")
    assert ClaimMapping.from_settings(Settings(jwt_default_role="customer")).default_role is (
        Role.CUSTOMER
    )
