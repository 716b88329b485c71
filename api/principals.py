"""Who is calling: a bearer credential (JWT or API key) resolved to a Principal.

    bm_live_… API key        -> the `service` role, as the key's subject (db/api_keys.py)
    JWT with a role claim    -> role and wallet from the claims (api/auth.py)
    JWT with a service `sub` -> the `service` role (BOOKME_JWT_SERVICE_SUBJECTS)
    JWT with only `sub`      -> the marketplace user the party directory knows by that subject,
                                with the directory's wallets and those proven with SIWE

The directory decides who a bare subject is: unknown to it is a 403 `unknown_user`. Without a
directory, the subject is the user and `BOOKME_JWT_DEFAULT_ROLE` the role.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import PARTY_ROLES, Principal, Role, TokenVerifier, claimed_principal, claimed_wallet
from api.errors import Forbidden, ServiceUnavailable, Unauthorized
from db.api_keys import looks_like_api_key, verify_api_key
from db.directory import DirectoryUnavailable, PartyDirectory
from db.wallet_links import linked_wallets


async def authenticate(
    token: str,
    *,
    verifier: TokenVerifier,
    sessions: async_sessionmaker[AsyncSession],
    directory: PartyDirectory | None,
) -> Principal:
    """The caller behind a bearer credential; 401 when it is not valid, 403 for an unknown user."""
    if looks_like_api_key(token):
        return await _api_key_principal(sessions, token)
    claims = await verifier.verified_claims(token)
    claimed = claimed_principal(claims, verifier.mapping)
    if claimed is not None:
        return claimed
    return await _directory_principal(claims, verifier, sessions, directory)


async def _api_key_principal(sessions: async_sessionmaker[AsyncSession], key: str) -> Principal:
    async with sessions() as session:
        row = await verify_api_key(session, key, now=datetime.now(UTC))
    if row is None:
        raise Unauthorized("unknown, revoked or expired API key", code="invalid_api_key")
    return Principal(user_id=row.subject, role=Role.SERVICE, wallet=None)


async def _directory_principal(
    claims: dict[str, Any],
    verifier: TokenVerifier,
    sessions: async_sessionmaker[AsyncSession],
    directory: PartyDirectory | None,
) -> Principal:
    """A token without a role: the directory's user, wallets merged with their proven ones."""
    mapping = verifier.mapping
    subject = str(claims["sub"])
    user_id, role = subject, mapping.default_role
    known: tuple[str, ...] = ()
    if directory is not None:
        try:
            user = await directory.user_for_subject(subject)
        except DirectoryUnavailable:
            raise ServiceUnavailable(
                "the marketplace's user directory is unavailable", code="directory_unavailable"
            ) from None
        if user is None:
            raise Forbidden(
                "the token is valid but names no user of the marketplace", code="unknown_user"
            )
        user_id, known = user.user_id, user.wallets
        # The directory may pin a party role; it never grants operator or service.
        if user.role in {r.value for r in PARTY_ROLES}:
            role = Role(str(user.role))
    claim = claimed_wallet(claims, mapping)
    async with sessions() as session:
        proven = await linked_wallets(session, user_id)
    wallets = tuple(dict.fromkeys(w for w in (claim, *known, *proven) if w))
    return Principal(
        user_id=user_id, role=role, wallet=wallets[0] if wallets else None, wallets=wallets
    )
