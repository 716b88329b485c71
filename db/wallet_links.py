"""Wallets proven with Sign-In with Ethereum and the single-use nonces of those proofs.

The party directory's SQL implementation may call `linked_wallets` to return them as the
user's wallets; the API also merges them into a directory user's principal itself.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.identity_models import SiweNonce, WalletLink

SWEEP_BATCH = 100


class WalletLinkedElsewhere(Exception):
    """The wallet is already linked to another user (a wallet has one owner)."""


async def linked_wallets(session: AsyncSession, user_id: str) -> tuple[str, ...]:
    """The user's proven wallets (checksummed), oldest link first."""
    rows = await session.scalars(
        select(WalletLink.address)
        .where(WalletLink.user_id == user_id)
        .order_by(WalletLink.linked_at, WalletLink.address)
    )
    return tuple(rows.all())


async def wallet_owner(session: AsyncSession, address: str) -> str | None:
    """The user who proved they hold `address` (checksummed), or None."""
    return await session.scalar(select(WalletLink.user_id).where(WalletLink.address == address))


async def issue_nonce(
    session: AsyncSession, user_id: str, *, now: datetime, ttl: timedelta
) -> SiweNonce:
    """A fresh nonce for one of the user's SIWE messages; sweeps some expired ones (anyone's).

    Used nonces are deleted when used; the sweep keeps the unused ones from piling up, so the
    table holds about (nonces issued per TTL) rows and needs no retention job.
    """
    expired = select(SiweNonce.nonce).where(SiweNonce.expires_at <= now).limit(SWEEP_BATCH)
    await session.execute(delete(SiweNonce).where(SiweNonce.nonce.in_(expired)))
    # 32 hex characters: alphanumeric and over the 8 EIP-4361 asks for.
    row = SiweNonce(nonce=secrets.token_hex(16), user_id=user_id, expires_at=now + ttl)
    session.add(row)
    await session.flush()
    return row


async def consume_nonce(session: AsyncSession, user_id: str, nonce: str, *, now: datetime) -> bool:
    """Use the user's unexpired nonce once: True if it was there (and is now gone)."""
    used = await session.scalar(
        delete(SiweNonce)
        .where(SiweNonce.nonce == nonce, SiweNonce.user_id == user_id, SiweNonce.expires_at > now)
        .returning(SiweNonce.nonce)
    )
    return used is not None


async def link_wallet(
    session: AsyncSession,
    *,
    user_id: str,
    address: str,
    chain_id: int,
    message: str,
    signature: str,
) -> WalletLink:
    """Record the proof; linking a wallet again refreshes it, another user's wallet is refused."""
    values = {
        "address": address,
        "user_id": user_id,
        "chain_id": chain_id,
        "message": message,
        "signature": signature,
    }
    stmt = insert(WalletLink).values(values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[WalletLink.address],
        set_={k: stmt.excluded[k] for k in ("chain_id", "message", "signature", "linked_at")},
        where=WalletLink.user_id == user_id,
    ).returning(WalletLink)
    row: WalletLink | None = await session.scalar(
        upsert, execution_options={"populate_existing": True}
    )
    if row is None:
        raise WalletLinkedElsewhere(address)
    return row


async def unlink_wallet(session: AsyncSession, user_id: str, address: str) -> bool:
    """Forget the user's link to `address`; False when they had none."""
    gone = await session.scalar(
        delete(WalletLink)
        .where(WalletLink.address == address, WalletLink.user_id == user_id)
        .returning(WalletLink.address)
    )
    return gone is not None
