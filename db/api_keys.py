"""Server-to-server API keys: created (shown once), looked up by id, verified by hash, revoked.

A key reads `bm_live_<key id>_<secret>`: the 12-hex id finds the row, the whole key's SHA-256 is
compared in constant time with the stored one. Only the hash is stored, so a database dump holds
no usable key. Rotation is create-then-revoke: both keys work until the old one is revoked or
expires (`expires_at`), the overlap in which the marketplace switches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.identity_models import ApiKey

KEY_PREFIX = "bm_live_"
_KEY = re.compile(r"bm_live_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, kw_only=True)
class CreatedKey:
    """A new key: `key` is shown once and never stored."""

    key_id: str
    subject: str
    name: str
    key: str
    expires_at: datetime | None


def looks_like_api_key(token: str) -> bool:
    """Whether a bearer credential is one of our API keys rather than a JWT."""
    return token.startswith(KEY_PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(
    session: AsyncSession, *, subject: str, name: str, expires_at: datetime | None
) -> CreatedKey:
    """Store a new key's hash; the caller's transaction commits it."""
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(
            key_id=key_id,
            subject=subject,
            name=name,
            secret_sha256=_digest(key),
            expires_at=expires_at,
        )
    )
    await session.flush()
    return CreatedKey(key_id=key_id, subject=subject, name=name, key=key, expires_at=expires_at)


async def list_api_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key, newest first (hashes included: they are not secrets)."""
    return (await session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))).all()


async def revoke_api_key(session: AsyncSession, key_id: str, *, now: datetime) -> bool:
    """Revoke a key from `now` on; False when no such key (revoking twice keeps the first time)."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        await session.execute(update(ApiKey).where(ApiKey.key_id == key_id).values(revoked_at=now))
    return True


async def expire_api_key(session: AsyncSession, key_id: str, *, at: datetime) -> bool:
    """Let a key work until `at` (the overlap of a rotation); never extends an earlier expiry."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.expires_at is None or row.expires_at > at:
        row.expires_at = at
    return True


def key_is_live(row: ApiKey, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


async def verify_api_key(session: AsyncSession, key: str, *, now: datetime) -> ApiKey | None:
    """The live key row `key` belongs to, or None (unknown, wrong secret, revoked, expired)."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    row = await session.get(ApiKey, match.group(1))
    # Compared even when the row is missing, so timing tells nothing about which ids exist.
    stored = row.secret_sha256 if row is not None else "0" * 64
    if not hmac.compare_digest(_digest(key), stored) or row is None:
        return None
    return row if key_is_live(row, now) else None
