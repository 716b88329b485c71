"""Webhook endpoints and their signing secrets, as operators manage them (CLI and admin API).

A secret is returned once, when it is made, and stored encrypted (Fernet, AES-128-CBC +
HMAC-SHA256, key from ``BOOKME_WEBHOOK_ENCRYPTION_KEY``): the relay needs it back to sign, so
it cannot be hashed. Rotation keeps the old secret signing until the overlap ends, so a
receiver that has not switched yet still verifies one of the two ``v1`` signatures.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import ColumnElement, and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.webhook_models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
    WebhookSecret,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_URL_LENGTH = 2000


class EndpointNotFound(LookupError):
    """No endpoint (still active) with that id."""


class SecretBox:
    """Encrypts signing secrets at rest; the key is a Fernet key (urlsafe base64, 32 bytes)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            # The key itself never reaches the message.
            raise ValueError(
                "BOOKME_WEBHOOK_ENCRYPTION_KEY is not a Fernet key "
                "(generate one: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode("utf-8"))

    def open(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode("utf-8")
        except InvalidToken:
            raise ValueError(
                "a webhook secret does not decrypt: BOOKME_WEBHOOK_ENCRYPTION_KEY changed?"
            ) from None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_url(url: str, *, https_only: bool = False) -> str:
    """An absolute http(s) URL with a host (https only, when `https_only`: production, where a
    signed payload about money must not cross the network in clear); ValueError says why."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"url is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an absolute http:// or https:// URL")
    if https_only and parts.scheme != "https":
        raise ValueError("url must be https:// in production")
    return url


@dataclass(frozen=True, kw_only=True)
class EndpointInfo:
    id: uuid.UUID
    url: str
    description: str
    created_at: datetime
    active_secrets: int
    pending: int
    dead: int


async def create_endpoint(
    session: AsyncSession, box: SecretBox, *, url: str, description: str = ""
) -> tuple[uuid.UUID, str]:
    """A new endpoint and its first secret (returned here only)."""
    endpoint_id = uuid.uuid4()
    session.add(WebhookEndpoint(id=endpoint_id, url=check_url(url), description=description))
    await session.flush()
    secret = new_secret()
    session.add(WebhookSecret(endpoint_id=endpoint_id, ciphertext=box.seal(secret)))
    await session.flush()
    return endpoint_id, secret


async def _active(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    row = (
        await session.execute(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.removed_at.is_(None))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise EndpointNotFound(f"no active webhook endpoint {endpoint_id}")
    return row


async def rotate_secret(
    session: AsyncSession, box: SecretBox, endpoint_id: uuid.UUID, *, overlap: timedelta
) -> tuple[str, datetime]:
    """A new secret; the current ones keep signing until the returned time."""
    await _active(session, endpoint_id)
    until = (await session.execute(select(func.now()))).scalar_one() + overlap
    await session.execute(
        update(WebhookSecret)
        .where(
            WebhookSecret.endpoint_id == endpoint_id,
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > until),
        )
        .values(expires_at=until)
    )
    secret = new_secret()
    session.add(WebhookSecret(endpoint_id=endpoint_id, ciphertext=box.seal(secret)))
    await session.flush()
    return secret, until


async def remove_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """Stop sending to it; its deliveries and attempts stay for the record."""
    row = await _active(session, endpoint_id)
    row.removed_at = (await session.execute(select(func.now()))).scalar_one()


async def list_endpoints(session: AsyncSession) -> list[EndpointInfo]:
    def count(status: DeliveryStatus):  # type: ignore[no-untyped-def]
        return (
            select(func.count())
            .where(WebhookDelivery.endpoint_id == WebhookEndpoint.id)
            .where(WebhookDelivery.status == status)
            .scalar_subquery()
        )

    secrets_live = (
        select(func.count())
        .where(
            WebhookSecret.endpoint_id == WebhookEndpoint.id,
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > func.now()),
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            WebhookEndpoint,
            secrets_live,
            count(DeliveryStatus.PENDING),
            count(DeliveryStatus.DEAD),
        )
        .where(WebhookEndpoint.removed_at.is_(None))
        .order_by(WebhookEndpoint.created_at)
    )
    return [
        EndpointInfo(
            id=e.id,
            url=e.url,
            description=e.description,
            created_at=e.created_at,
            active_secrets=live,
            pending=pending,
            dead=dead,
        )
        for e, live, pending, dead in rows
    ]


async def signing_secrets(
    session: AsyncSession, box: SecretBox, endpoint_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The secrets each endpoint is signed with now, newest first."""
    rows = await session.execute(
        select(WebhookSecret.endpoint_id, WebhookSecret.ciphertext)
        .where(
            WebhookSecret.endpoint_id.in_(list(endpoint_ids)),
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > func.now()),
        )
        .order_by(WebhookSecret.id.desc())
    )
    found: dict[uuid.UUID, list[str]] = {}
    for endpoint_id, ciphertext in rows:
        found.setdefault(endpoint_id, []).append(box.open(ciphertext))
    return found


@dataclass(frozen=True, kw_only=True)
class ReplaySelection:
    """Which events to send again; at least one criterion (the CLI and API refuse none)."""

    event_id: uuid.UUID | None = None
    booking_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    endpoint_id: uuid.UUID | None = None

    def is_empty(self) -> bool:
        return self.event_id is None and self.booking_id is None and self.since is None


async def replay(session: AsyncSession, selection: ReplaySelection) -> int:
    """Queue the selected events again to every active endpoint (or one); how many deliveries.

    Delivered and dead deliveries become pending with a fresh retry horizon; an endpoint added
    after the event gets it too. The relay keeps each booking's order among them.
    """
    conditions: list[ColumnElement[bool]] = []
    if selection.event_id is not None:
        conditions.append(WebhookOutbox.event_id == selection.event_id)
    if selection.booking_id is not None:
        conditions.append(WebhookOutbox.booking_id == selection.booking_id)
    if selection.since is not None:
        conditions.append(WebhookOutbox.created_at >= selection.since)
    if selection.until is not None:
        conditions.append(WebhookOutbox.created_at < selection.until)
    endpoints: list[ColumnElement[bool]] = [WebhookEndpoint.removed_at.is_(None)]
    if selection.endpoint_id is not None:
        endpoints.append(WebhookEndpoint.id == selection.endpoint_id)
    source = (
        select(WebhookOutbox.id, WebhookEndpoint.id, WebhookOutbox.booking_id, literal(0))
        .join(WebhookEndpoint, and_(*endpoints))
        .where(*conditions)
    )
    statement = insert(WebhookDelivery).from_select(
        ["outbox_id", "endpoint_id", "booking_id", "attempts"], source
    )
    result = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[WebhookDelivery.outbox_id, WebhookDelivery.endpoint_id],
            set_={
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": func.now(),
                "retry_from": func.now(),
                "delivered_at": None,
                "dead_at": None,
            },
        ).returning(WebhookDelivery.id)
    )
    return len(result.all())
