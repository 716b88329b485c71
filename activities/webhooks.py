"""Sending the outbox to the marketplace: sign, POST, record every attempt, back off, give up.

A delivery is sent when it is due and no earlier event of the same booking is still pending to
the same endpoint, so a booking's events arrive in order. Each attempt is a row in
``webhook_attempts``; a failure schedules the next one with exponential backoff until the retry
horizon (counted from the event, or from an operator's replay) has passed, then the delivery is
dead: an error log line and ``bookme_webhook_dead_total``, and the row stays for a replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from temporalio import activity

from bookme.settings import Settings
from db.webhook_endpoints import SecretBox, signing_secrets
from db.webhook_models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
)
from workflows.webhook_relay import DISPATCH_WEBHOOKS, DispatchRequest, DispatchResult

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "BookMe-Signature"
MAX_ERROR_LENGTH = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of ``"<timestamp>." + body`` with the secret's UTF-8 bytes, as hex."""
    signed = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex>`` with one ``v1`` per live secret (two during a rotation)."""
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


@dataclass(frozen=True, kw_only=True)
class DeliveryConfig:
    timeout_seconds: float = 10.0
    retry_initial_seconds: float = 10.0
    retry_max_seconds: float = 3600.0
    retry_horizon_seconds: float = 3 * 86400.0
    batch_size: int = 100
    concurrency: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            timeout_seconds=settings.webhook_timeout_seconds,
            retry_initial_seconds=settings.webhook_retry_initial_seconds,
            retry_max_seconds=settings.webhook_retry_max_seconds,
            retry_horizon_seconds=settings.webhook_retry_horizon_seconds,
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failure: doubling from the initial, capped."""
        seconds = self.retry_initial_seconds * 2 ** min(attempts - 1, 40)
        return timedelta(seconds=min(seconds, self.retry_max_seconds))


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "bookme_webhook_attempts_total",
            "Webhook POSTs by outcome (delivered, failed).",
            ["outcome"],
            registry=registry,
        )
        self.dead = Counter(
            "bookme_webhook_dead_total",
            "Webhook deliveries given up after the retry horizon (replay them).",
            registry=registry,
        )


@dataclass(frozen=True, kw_only=True)
class _Due:
    delivery_id: int
    endpoint_id: uuid.UUID
    url: str
    attempts: int
    retry_from: datetime
    payload: dict[str, Any]
    db_now: datetime


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDispatcher:
    """The relay's activity: every due delivery, sent and recorded (idempotent per attempt)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        metrics: WebhookMetrics,
        config: DeliveryConfig | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._metrics = metrics
        self._config = config or DeliveryConfig()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        registry: CollectorRegistry | None,
    ) -> WebhookDispatcher:
        """The worker's dispatcher; its metrics on the worker's registry."""
        return cls(
            sessions,
            SecretBox(settings.webhook_encryption_key.get_secret_value()),
            WebhookMetrics(registry if registry is not None else CollectorRegistry()),
            DeliveryConfig.from_settings(settings),
        )

    @activity.defn(name=DISPATCH_WEBHOOKS)
    async def dispatch_webhooks(self, request: DispatchRequest) -> DispatchResult:
        """Send until nothing is due or ``max_seconds`` have passed."""
        stop = time.monotonic() + request.max_seconds
        total = DispatchResult()
        while time.monotonic() < stop:
            result = await self.dispatch_once()
            activity.heartbeat()
            total = DispatchResult(
                delivered=total.delivered + result.delivered,
                failed=total.failed + result.failed,
                dead=total.dead + result.dead,
            )
            if result == DispatchResult():
                break
        return total

    async def dispatch_once(self) -> DispatchResult:
        """One round: the head of each (endpoint, booking) line that is due, sent concurrently."""
        async with self._sessions() as session:
            due = await self._due(session)
            secrets = await signing_secrets(session, self._box, [d.endpoint_id for d in due])
        if not due:
            return DispatchResult()
        gate = asyncio.Semaphore(self._config.concurrency)
        async with httpx.AsyncClient(timeout=self._config.timeout_seconds) as client:

            async def send(item: _Due) -> DeliveryStatus:
                async with gate:
                    outcome = await self._post(client, item, secrets.get(item.endpoint_id, []))
                status = await self._record(item, outcome)
                # After every POST: a round of slow endpoints may outlast the heartbeat timeout.
                if activity.in_activity():
                    activity.heartbeat()
                return status

            statuses = await asyncio.gather(*(send(item) for item in due))
        return DispatchResult(
            delivered=statuses.count(DeliveryStatus.DELIVERED),
            failed=statuses.count(DeliveryStatus.PENDING),
            dead=statuses.count(DeliveryStatus.DEAD),
        )

    async def _due(self, session: AsyncSession) -> list[_Due]:
        delivery = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(
            earlier.status == DeliveryStatus.PENDING,
            earlier.endpoint_id == delivery.endpoint_id,
            earlier.booking_id == delivery.booking_id,
            earlier.outbox_id < delivery.outbox_id,
        )
        rows = await session.execute(
            select(
                delivery.id,
                delivery.endpoint_id,
                WebhookEndpoint.url,
                delivery.attempts,
                delivery.retry_from,
                WebhookOutbox.payload,
                func.now(),
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == delivery.endpoint_id)
            .join(WebhookOutbox, WebhookOutbox.id == delivery.outbox_id)
            .where(
                delivery.status == DeliveryStatus.PENDING,
                delivery.next_attempt_at <= func.now(),
                WebhookEndpoint.removed_at.is_(None),
                ~blocked,
            )
            .order_by(delivery.outbox_id)
            .limit(self._config.batch_size)
        )
        return [
            _Due(
                delivery_id=row[0],
                endpoint_id=row[1],
                url=row[2],
                attempts=row[3],
                retry_from=row[4],
                payload=row[5],
                db_now=row[6],
            )
            for row in rows
        ]

    async def _post(self, client: httpx.AsyncClient, item: _Due, secrets: list[str]) -> _Outcome:
        started = time.perf_counter()
        if not secrets:
            return _Outcome(ok=False, status_code=None, error="no signing secret", duration_ms=0)
        body = encode_body(item.payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secrets, int(time.time()), body),
            "BookMe-Event-Id": str(item.payload.get("id")),
            "BookMe-Event-Type": str(item.payload.get("type")),
        }
        try:
            response = await client.post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
            return _Outcome(ok=False, status_code=None, error=error, duration_ms=_ms(started))
        ok = 200 <= response.status_code < 300
        return _Outcome(
            ok=ok,
            status_code=response.status_code,
            error=None if ok else f"HTTP {response.status_code}",
            duration_ms=_ms(started),
        )

    async def _record(self, item: _Due, outcome: _Outcome) -> DeliveryStatus:
        """The attempt row and the delivery's next state, in one transaction."""
        attempts = item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        horizon = timedelta(seconds=self._config.retry_horizon_seconds)
        now = item.db_now + timedelta(milliseconds=outcome.duration_ms)
        if outcome.ok:
            status = DeliveryStatus.DELIVERED
            values["delivered_at"] = func.now()
        elif now - item.retry_from >= horizon:
            status = DeliveryStatus.DEAD
            values["dead_at"] = func.now()
        else:
            status = DeliveryStatus.PENDING
            # The last attempt lands on the horizon itself: retries span at least the horizon.
            values["next_attempt_at"] = min(
                now + self._config.backoff(attempts), item.retry_from + horizon
            )
        values["status"] = status
        async with self._sessions.begin() as session:
            await session.execute(
                insert(WebhookAttempt).values(
                    delivery_id=item.delivery_id,
                    succeeded=outcome.ok,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            # Only over the state this attempt started from (a replay meanwhile wins).
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == item.delivery_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.attempts == item.attempts,
                )
                .values(**values)
            )
        self._observe(item, outcome, status, attempts)
        return status

    def _observe(
        self, item: _Due, outcome: _Outcome, status: DeliveryStatus, attempts: int
    ) -> None:
        self._metrics.attempts.labels("delivered" if outcome.ok else "failed").inc()
        fields = {
            "event_id": item.payload.get("id"),
            "event_type": item.payload.get("type"),
            "endpoint_id": str(item.endpoint_id),
            "attempts": attempts,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        if status is DeliveryStatus.DEAD:
            # Not an operator.attention_needed event: it would go to the endpoint that is down.
            self._metrics.dead.inc()
            log.error("webhook_dead", **fields)
        elif status is DeliveryStatus.PENDING:
            log.warning("webhook_failed", **fields)


def _ms(started: float) -> int:
    return max(0, int((time.perf_counter() - started) * 1000))
