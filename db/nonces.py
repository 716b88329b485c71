"""Reserve a unique EIP-712 nonce in Postgres before signing an authorization."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import SignatureNonce
from db.statuses import NonceKind


async def reserve_nonce(
    session: AsyncSession,
    *,
    booking_id: uuid.UUID,
    kind: NonceKind,
    expires_at: datetime,
    authorization: dict[str, Any] | None = None,
) -> int:
    """Insert a row with the next `signature_nonce_seq` value and return that nonce.

    The sequence makes concurrent reservations unique without retries; the caller's
    transaction commits the row (a rolled-back reservation only leaves a harmless gap).
    """
    result = await session.execute(
        insert(SignatureNonce)
        .values(
            booking_id=booking_id,
            kind=kind,
            expires_at=expires_at,
            authorization=authorization,
        )
        .returning(SignatureNonce.nonce)
    )
    return result.scalar_one()
