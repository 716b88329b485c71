"""Bearer JWT authentication: HS256 shared secret in development, a JWKS URL in production.

Claims: ``sub`` (user id), ``role`` (customer | provider | operator | service), ``wallet``
(required for customers and providers), ``exp`` (required); ``aud``/``iss`` are checked when
configured. ``service`` is the marketplace's server-to-server credential: with operators, the
only callers trusted to decide a booking's terms (price, parties, inviter).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from eth_utils.address import is_hex_address, to_checksum_address

from api.errors import ServiceUnavailable, Unauthorized
from api.text import unstorable_problem
from bookme.settings import Settings, SettingsError

_ASYMMETRIC_PREFIXES = ("RS", "PS", "ES", "Ed")
LEEWAY_SECONDS = 30


class Role(StrEnum):
    CUSTOMER = "customer"
    PROVIDER = "provider"
    OPERATOR = "operator"
    SERVICE = "service"


# Parties act on bookings through the wallet their token names.
WALLET_ROLES = frozenset({Role.CUSTOMER, Role.PROVIDER})
# Callers whose word on price, provider wallet, inviter and customer the service takes: the
# marketplace's own server and operators, never a party to the booking.
TERMS_ROLES = frozenset({Role.OPERATOR, Role.SERVICE})


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    role: Role
    wallet: str | None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def decides_booking_terms(self) -> bool:
        """True for the callers trusted to set a booking's price, parties and inviter."""
        return self.role in TERMS_ROLES

    def is_party(self, *, customer_wallet: str | None, provider_wallet: str | None) -> bool:
        """True when this caller, in their role, is the booking's customer or provider."""
        if self.wallet is None:
            return False
        own = self.wallet.lower()
        if self.role is Role.CUSTOMER:
            return (customer_wallet or "").lower() == own
        if self.role is Role.PROVIDER:
            return (provider_wallet or "").lower() == own
        return False

    def may_see(self, *, customer_wallet: str | None, provider_wallet: str | None) -> bool:
        """Operators see every booking; others only their own (deny by default)."""
        return self.is_operator or self.is_party(
            customer_wallet=customer_wallet, provider_wallet=provider_wallet
        )


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Turn verified claims into a Principal, refusing anything incomplete."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized("token has no subject", code="invalid_token")
    # The subject becomes Postgres text (customer id, rate-limit keys): refuse what it cannot store.
    problem = unstorable_problem(sub)
    if problem is not None:
        raise Unauthorized(f"token subject {problem}", code="invalid_token")
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise Unauthorized(
            f"token role must be one of {', '.join(Role)}", code="invalid_token"
        ) from None
    wallet = claims.get("wallet")
    if wallet is not None and (not isinstance(wallet, str) or not is_hex_address(wallet)):
        raise Unauthorized("token wallet is not an address", code="invalid_token")
    if wallet is None and role in WALLET_ROLES:
        raise Unauthorized("token has no wallet", code="invalid_token")
    return Principal(user_id=sub, role=role, wallet=to_checksum_address(wallet) if wallet else None)


class TokenVerifier:
    """Verifies bearer tokens with a shared secret or the keys published at a JWKS URL."""

    def __init__(
        self,
        *,
        algorithm: str,
        secret: str | None = None,
        jwks_client: jwt.PyJWKClient | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        if (secret is None) == (jwks_client is None):
            raise SettingsError("configure exactly one of a JWT secret or a JWKS URL")
        asymmetric = algorithm.startswith(_ASYMMETRIC_PREFIXES)
        if jwks_client is not None and not asymmetric:
            # A public key must never be usable as an HMAC secret (algorithm confusion).
            raise SettingsError(f"BOOKME_JWT_ALGORITHM={algorithm} cannot be used with a JWKS URL")
        if secret is not None and asymmetric:
            raise SettingsError(f"BOOKME_JWT_ALGORITHM={algorithm} needs BOOKME_JWKS_URL")
        self._algorithm = algorithm
        self._secret = secret
        self._jwks = jwks_client
        self._audience = audience or None
        self._issuer = issuer or None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """HS256 with `jwt_secret`, or the JWKS at `jwks_url` when it is set."""
        common: dict[str, Any] = {
            "algorithm": settings.jwt_algorithm,
            "audience": settings.jwt_audience,
            "issuer": settings.jwt_issuer,
        }
        if settings.jwks_url:
            return cls(jwks_client=jwt.PyJWKClient(settings.jwks_url, cache_keys=True), **common)
        return cls(secret=settings.jwt_secret.get_secret_value(), **common)

    async def verify(self, token: str) -> Principal:
        """The caller behind `token`, or Unauthorized (ServiceUnavailable if the JWKS is down)."""
        try:
            key: Any = self._secret
            if self._jwks is not None:
                # PyJWKClient fetches over blocking urllib (cached afterwards).
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key = signing_key.key
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code="token_expired") from None
        except jwt.PyJWKClientConnectionError:
            raise ServiceUnavailable(
                "the identity provider's keys are unavailable", code="jwks_unavailable"
            ) from None
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from None
        return principal_from_claims(claims)


def mint_token(
    secret: str,
    *,
    sub: str,
    role: Role | str,
    wallet: str | None = None,
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """A development token signed with the shared secret (tests, `make dev` users)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": str(role), "iat": now, "exp": now + ttl_seconds}
    if wallet is not None:
        claims["wallet"] = wallet
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=algorithm)
