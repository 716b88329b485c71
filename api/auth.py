"""Bearer JWT authentication: HS256 shared secret in development, a JWKS URL in production.

Claims: ``sub`` (user id) and ``exp`` (required); ``aud``/``iss`` are checked when configured.
A token that carries a role claim (``role`` by default: customer | provider | user | operator |
service) is taken at its word, with its ``wallet`` claim (required for customers and providers).
A token without one (Privy's carry only ``sub``) names a marketplace user whose role and wallets
come from the party directory (`api/principals.py`). ``service`` is the marketplace's
server-to-server credential: with operators, the only callers trusted to decide a booking's terms
(price, parties, inviter).
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
    # A marketplace user: the customer of the bookings whose customer wallet they hold, the
    # provider of those whose provider wallet they hold (a user may be both, on different ones).
    USER = "user"
    OPERATOR = "operator"
    SERVICE = "service"


# A token claiming one of these roles must name the wallet the party acts through.
WALLET_ROLES = frozenset({Role.CUSTOMER, Role.PROVIDER})
# Roles that may be a party to a booking, through the wallets they hold.
PARTY_ROLES = frozenset({Role.CUSTOMER, Role.PROVIDER, Role.USER})
# Callers whose word on price, provider wallet, inviter and customer the service takes: the
# marketplace's own server and operators, never a party to the booking.
TERMS_ROLES = frozenset({Role.OPERATOR, Role.SERVICE})


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    role: Role
    wallet: str | None
    # Every wallet the caller acts through, `wallet` (the primary one) first.
    wallets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.wallet is not None and self.wallet not in self.wallets:
            object.__setattr__(self, "wallets", (self.wallet, *self.wallets))

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def decides_booking_terms(self) -> bool:
        """True for the callers trusted to set a booking's price, parties and inviter."""
        return self.role in TERMS_ROLES

    def holds(self, wallet: str | None) -> bool:
        """Whether `wallet` (any case) is one of the caller's."""
        wanted = (wallet or "").lower()
        return bool(wanted) and any(own.lower() == wanted for own in self.wallets)

    def parties(self, *, customer_wallet: str | None, provider_wallet: str | None) -> set[Role]:
        """Which of the booking's parties this caller is, in their role (deny by default)."""
        found = set()
        if self.role in (Role.CUSTOMER, Role.USER) and self.holds(customer_wallet):
            found.add(Role.CUSTOMER)
        if self.role in (Role.PROVIDER, Role.USER) and self.holds(provider_wallet):
            found.add(Role.PROVIDER)
        return found

    def acting_party(
        self, *, customer_wallet: str | None, provider_wallet: str | None
    ) -> Role | None:
        """The one party the caller acts as on the booking: None if none, or both (ambiguous)."""
        found = self.parties(customer_wallet=customer_wallet, provider_wallet=provider_wallet)
        return found.pop() if len(found) == 1 else None

    def is_party(self, *, customer_wallet: str | None, provider_wallet: str | None) -> bool:
        """True when this caller, in their role, is the booking's customer or provider."""
        return bool(self.parties(customer_wallet=customer_wallet, provider_wallet=provider_wallet))

    def may_see(self, *, customer_wallet: str | None, provider_wallet: str | None) -> bool:
        """Operators see every booking; others only their own (deny by default)."""
        return self.is_operator or self.is_party(
            customer_wallet=customer_wallet, provider_wallet=provider_wallet
        )


@dataclass(frozen=True, kw_only=True)
class ClaimMapping:
    """Which claims name the caller's role and wallet, and which subjects are the service."""

    role_claim: str = "role"
    wallet_claim: str = "wallet"
    # The role of a token without a role claim, unless the party directory says otherwise.
    default_role: Role = Role.USER
    service_subjects: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaimMapping:
        return cls(
            role_claim=settings.jwt_role_claim,
            wallet_claim=settings.jwt_wallet_claim,
            default_role=Role(settings.jwt_default_role or Role.USER),
            service_subjects=frozenset(settings.jwt_service_subjects),
        )


def token_subject(claims: dict[str, Any]) -> str:
    """The token's `sub`, refused when missing or unstorable."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized("token has no subject", code="invalid_token")
    # The subject becomes Postgres text (customer id, rate-limit keys): refuse what it cannot store.
    problem = unstorable_problem(sub)
    if problem is not None:
        raise Unauthorized(f"token subject {problem}", code="invalid_token")
    return sub


def claimed_wallet(claims: dict[str, Any], mapping: ClaimMapping) -> str | None:
    """The wallet claim, checksummed (None when absent; 401 when it is not an address)."""
    wallet = claims.get(mapping.wallet_claim)
    if wallet is None:
        return None
    if not isinstance(wallet, str) or not is_hex_address(wallet):
        raise Unauthorized("token wallet is not an address", code="invalid_token")
    return to_checksum_address(wallet)


def claimed_principal(claims: dict[str, Any], mapping: ClaimMapping) -> Principal | None:
    """The caller the claims name by themselves; None when the directory must say (no role)."""
    sub = token_subject(claims)
    if sub in mapping.service_subjects:
        return Principal(user_id=sub, role=Role.SERVICE, wallet=None)
    if not mapping.role_claim or mapping.role_claim not in claims:
        return None
    try:
        role = Role(str(claims.get(mapping.role_claim)))
    except ValueError:
        raise Unauthorized(
            f"token role must be one of {', '.join(Role)}", code="invalid_token"
        ) from None
    wallet = claimed_wallet(claims, mapping)
    if wallet is None and role in WALLET_ROLES:
        raise Unauthorized("token has no wallet", code="invalid_token")
    return Principal(user_id=sub, role=role, wallet=wallet)


def principal_from_claims(claims: dict[str, Any], mapping: ClaimMapping | None = None) -> Principal:
    """Turn verified claims into a Principal, refusing anything incomplete (no role included)."""
    principal = claimed_principal(claims, mapping or ClaimMapping())
    if principal is None:
        raise Unauthorized(f"token role must be one of {', '.join(Role)}", code="invalid_token")
    return principal


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
        mapping: ClaimMapping | None = None,
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
        self.mapping = mapping or ClaimMapping()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """HS256 with `jwt_secret`, or the JWKS at `jwks_url` when it is set."""
        common: dict[str, Any] = {
            "algorithm": settings.jwt_algorithm,
            "audience": settings.jwt_audience,
            "issuer": settings.jwt_issuer,
            "mapping": ClaimMapping.from_settings(settings),
        }
        if settings.jwks_url:
            return cls(jwks_client=jwt.PyJWKClient(settings.jwks_url, cache_keys=True), **common)
        return cls(secret=settings.jwt_secret.get_secret_value(), **common)

    async def verify(self, token: str) -> Principal:
        """The caller the token's own claims name (no directory), or Unauthorized."""
        return principal_from_claims(await self.verified_claims(token), self.mapping)

    async def verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid token, or Unauthorized (ServiceUnavailable if the JWKS is down)."""
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
        token_subject(claims)
        return claims


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
