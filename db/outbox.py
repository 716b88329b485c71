"""The transactional outbox: events for the marketplace, written in the caller's transaction.

Every writer passes the session of the change it announces (a booking transition, a raised
suspicion, a reconcile finding), so the event exists exactly when the change committed. The
row's deliveries, one per active endpoint, are written in the same statement batch; the relay
(`activities/webhooks.py`) sends them. A retried writer adds nothing: `dedupe_key` is unique and
the event id is derived from it, so receivers can dedupe on `id` across replays too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking
from db.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookOutbox
from workflows.audit import AuditAction
from workflows.types import (
    BookingStatus,
    ChainEventKind,
    EventOutcome,
    OrphanRecord,
    TransitionRecord,
)

# Event ids are uuid5(namespace, dedupe key): stable across retries of the writer.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-3d0e-4c1b-9a55-2b7f0c1d8e90")


class WebhookEventType(StrEnum):
    """The `type` of an event; receivers switch on it, so renaming one is a breaking change."""

    BOOKING_PAID = "booking.paid"
    BOOKING_COMPLETED = "booking.completed"  # the seed's review-system trigger
    BOOKING_CANCELLED = "booking.cancelled"
    BOOKING_FAILED = "booking.failed"
    BOOKING_REFUNDED = "booking.refunded"  # money went back to the customer
    BOOKING_STATUS_CHANGED = "booking.status_changed"  # every other status change
    SECURITY_SUSPICIOUS_ACTIVITY = "security.suspicious_activity"
    OPERATOR_ATTENTION_NEEDED = "operator.attention_needed"


# Audit actions after which the workflow waits for a person (a refund or completion it could
# not send, money moved in a way the booking did not allow, its own transaction reverted).
ATTENTION_ACTIONS = frozenset(
    {
        AuditAction.CONTRADICTION,
        AuditAction.REFUND_FAILED,
        AuditAction.AUTO_COMPLETE_FAILED,
        AuditAction.COMPLETED_WHILE_FAILED,
        AuditAction.TRANSACTION_REVERTED,
    }
)

_STATUS_EVENTS = {
    BookingStatus.COMPLETED: WebhookEventType.BOOKING_COMPLETED,
    BookingStatus.CANCELLED: WebhookEventType.BOOKING_CANCELLED,
    BookingStatus.FAILED: WebhookEventType.BOOKING_FAILED,
}


def transition_events(record: TransitionRecord) -> list[WebhookEventType]:
    """What one transition announces, in the order receivers get it (pure)."""
    types: list[WebhookEventType] = []
    if record.from_status is not record.to_status:
        if record.to_status is BookingStatus.PAID and (
            record.from_status is BookingStatus.PENDING_PAYMENT
        ):
            types.append(WebhookEventType.BOOKING_PAID)
        else:
            types.append(
                _STATUS_EVENTS.get(record.to_status, WebhookEventType.BOOKING_STATUS_CHANGED)
            )
    settlement = record.settlement
    if (
        settlement is not None
        and settlement.kind is ChainEventKind.CANCELLATION
        and settlement.customer_amount > 0
        and record.event_outcome is not EventOutcome.REORGED
    ):
        types.append(WebhookEventType.BOOKING_REFUNDED)
    if record.action in ATTENTION_ACTIONS:
        types.append(WebhookEventType.OPERATOR_ATTENTION_NEEDED)
    return types


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def booking_fields(row: Booking) -> dict[str, Any]:
    """The booking's public fields (as `GET /bookings/{id}`); money only as base-unit strings
    (`amount_units`), the decimal `amount` being an API rendering of it."""
    units = row.amount_units
    return {
        "id": str(row.id),
        "chain_booking_id": row.blockchain_booking_id,
        "workflow_id": row.workflow_id,
        "status": str(row.status),
        "status_reason": row.status_reason,
        "service_id": row.service_id,
        "customer_id": row.customer_id,
        "provider_id": row.provider_id,
        "customer_wallet": row.customer_wallet,
        "provider_wallet": row.provider_wallet,
        "inviter_wallet": row.inviter_wallet,
        "amount_units": None if units is None else str(units),
        "platform_fee_bps": row.platform_fee_bps,
        "inviter_fee_bps": row.inviter_fee_bps,
        "scheduled_at": _iso(row.scheduled_at),
        "blockchain_tx_hash": row.blockchain_tx_hash,
        "blockchain_confirmed_at": _iso(row.blockchain_confirmed_at),
        "completion_tx_hash": row.completion_tx_hash,
        "cancellation_tx_hash": row.cancellation_tx_hash,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _transition_data(record: TransitionRecord, booking: dict[str, Any]) -> dict[str, Any]:
    settlement = record.settlement
    return {
        "booking": booking,
        "previous_status": str(record.from_status),
        "status": str(record.to_status),
        "action": str(record.action),
        "reason": record.reason,
        "tx_hash": record.event.identity.tx_hash if record.event else record.tx_hash,
        "occurred_at": record.occurred_at.isoformat(),
        "settlement": None
        if settlement is None
        else {
            "kind": str(settlement.kind),
            "customer_amount_units": str(settlement.customer_amount),
            "provider_amount_units": str(settlement.provider_amount),
            "platform_amount_units": str(settlement.platform_amount),
            "inviter_amount_units": str(settlement.inviter_amount),
            "emergency": settlement.emergency,
        },
    }


async def record_transition(
    session: AsyncSession, booking_id: uuid.UUID, record: TransitionRecord
) -> None:
    """The events one booking transition announces, in the transition's transaction."""
    types = transition_events(record)
    if not types:
        return
    row = (
        await session.execute(
            select(Booking)
            .where(Booking.id == booking_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    data = _transition_data(record, booking_fields(row))
    for event_type in types:
        await enqueue(
            session,
            event_type=event_type,
            booking_id=booking_id,
            dedupe_key=f"transition:{booking_id}:{record.dedupe_key}:{event_type.value}",
            data=data,
        )


async def record_orphan(session: AsyncSession, record: OrphanRecord) -> None:
    """A payment into escrow for no booking of ours: operators hear of each step of its refund."""
    await enqueue(
        session,
        event_type=WebhookEventType.OPERATOR_ATTENTION_NEEDED,
        dedupe_key=f"orphan:{record.payment.key}:{record.action}",
        data={
            "source": "orphan_payment",
            "action": record.action,
            "chain_booking_id": record.chain_booking_id,
            "payment_tx_hash": record.payment.identity.tx_hash,
            "payment_live": record.payment_live,
            "refund_tx_hash": record.refund_tx_hash,
            "occurred_at": record.occurred_at.isoformat(),
        },
    )


async def enqueue(
    session: AsyncSession,
    *,
    event_type: WebhookEventType,
    dedupe_key: str,
    data: dict[str, Any],
    booking_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Write one event and its deliveries; None if `dedupe_key` was written before."""
    event_id = uuid.uuid5(EVENT_ID_NAMESPACE, dedupe_key)
    payload = {
        "id": str(event_id),
        "type": event_type.value,
        "created_at": datetime.now(UTC).isoformat(),
        "booking_id": None if booking_id is None else str(booking_id),
        "data": data,
    }
    outbox_id = (
        await session.execute(
            insert(WebhookOutbox)
            .values(
                event_id=event_id,
                event_type=event_type.value,
                booking_id=booking_id,
                dedupe_key=dedupe_key,
                payload=payload,
            )
            .on_conflict_do_nothing(index_elements=[WebhookOutbox.dedupe_key])
            .returning(WebhookOutbox.id)
        )
    ).scalar_one_or_none()
    if outbox_id is None:
        return None
    await session.execute(
        insert(WebhookDelivery).from_select(
            ["outbox_id", "endpoint_id", "booking_id"],
            select(
                literal(outbox_id),
                WebhookEndpoint.id,
                literal(booking_id, UUID(as_uuid=True)),
            ).where(WebhookEndpoint.removed_at.is_(None)),
        )
    )
    return event_id
