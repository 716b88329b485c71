"""Chain events in their three shapes: decoded log -> signal payload <-> `blockchain_events.payload`.

One codec for every writer and reader, so an event is stored the same whoever sees it first
(the listener, a workflow's poll, the reconciler) and a stored row rebuilds the very signal that
was delivered (what a revert after a reorg carries). It sits here, next to the signal types,
because both the listener and the activities use it and neither may import the other.

The row payload is the event's decoded arguments: ``booking_id`` (the chain booking id) plus the
kind's fields, integers as decimal strings (JSON numbers lose uint256 precision). Rows written
before this module existed may lack ``booking_id`` or hold plain integers; both still read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, get_type_hints

from chain.events import BookingCancelled, BookingCreatedAndPaid, DecodedEvent, ServiceCompleted
from workflows.types import (
    CancellationFields,
    ChainEventKind,
    ChainEventSignal,
    CompletionFields,
    EventIdentity,
    PaymentFields,
)

EventFields = PaymentFields | CompletionFields | CancellationFields


def signal_from_event(event: DecodedEvent) -> ChainEventSignal:
    """The ``payment_confirmed`` / ``service_completed`` / ``booking_cancelled`` payload.

    The listener, the polling activity and the reconciler all go through here, so a pushed and
    a polled event carry the identical identity and fields and the workflow's dedupe sees one.
    """
    identity = EventIdentity(
        chain_id=event.identity.chain_id,
        tx_hash=event.identity.tx_hash.lower(),
        log_index=event.identity.log_index,
        block_number=event.position.block_number,
        block_hash=event.position.block_hash.lower(),
    )
    booking = event.booking_id.lower()
    if isinstance(event, BookingCreatedAndPaid):
        return ChainEventSignal(
            kind=ChainEventKind.PAYMENT,
            identity=identity,
            chain_booking_id=booking,
            payment=PaymentFields(
                customer=event.customer,
                provider=event.provider,
                inviter=event.inviter,
                amount=event.amount,
                platform_fee_rate=event.platform_fee_rate,
                inviter_fee_rate=event.inviter_fee_rate,
            ),
        )
    if isinstance(event, ServiceCompleted):
        return ChainEventSignal(
            kind=ChainEventKind.COMPLETION,
            identity=identity,
            chain_booking_id=booking,
            completion=CompletionFields(
                provider=event.provider,
                provider_amount=event.provider_amount,
                platform_fee=event.platform_fee,
                inviter_fee=event.inviter_fee,
            ),
        )
    if isinstance(event, BookingCancelled):
        return ChainEventSignal(
            kind=ChainEventKind.CANCELLATION,
            identity=identity,
            chain_booking_id=booking,
            cancellation=CancellationFields(
                cancelled_by=event.cancelled_by,
                customer_amount=event.customer_amount,
                provider_amount=event.provider_amount,
                platform_amount=event.platform_amount,
                inviter_amount=event.inviter_amount,
                reason=event.reason,
            ),
        )
    raise TypeError(f"not an escrow booking event: {type(event).__name__}")


def event_fields(signal: ChainEventSignal) -> EventFields:
    """The field group of the signal's kind (exactly one is set)."""
    fields = signal.payment or signal.completion or signal.cancellation
    assert fields is not None  # ChainEventSignal.__post_init__ guarantees one
    return fields


def row_payload(signal: ChainEventSignal) -> dict[str, str]:
    """What `blockchain_events.payload` holds for this event."""
    fields = event_fields(signal)
    payload = {"booking_id": signal.chain_booking_id.lower()}
    for field in dataclasses.fields(fields):
        payload[field.name] = str(getattr(fields, field.name))
    return payload


_KIND_FIELDS: dict[ChainEventKind, type[EventFields]] = {
    ChainEventKind.PAYMENT: PaymentFields,
    ChainEventKind.COMPLETION: CompletionFields,
    ChainEventKind.CANCELLATION: CancellationFields,
}


def _read_fields(cls: type[EventFields], payload: Mapping[str, Any]) -> EventFields:
    """The kind's fields from a payload; integers may be stored as strings or numbers."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {
        name: int(str(payload[name])) if hint is int else str(payload[name])
        for name, hint in hints.items()
    }
    return cls(**values)


def signal_from_row(
    *,
    kind: str,
    identity: EventIdentity,
    chain_booking_id: str,
    payload: Mapping[str, Any],
) -> ChainEventSignal:
    """Rebuild the signal of a stored event (to revert it after a reorg)."""
    event_kind = ChainEventKind(kind)
    fields = _read_fields(_KIND_FIELDS[event_kind], payload)
    return ChainEventSignal(
        kind=event_kind,
        identity=identity,
        chain_booking_id=chain_booking_id,
        payment=fields if isinstance(fields, PaymentFields) else None,
        completion=fields if isinstance(fields, CompletionFields) else None,
        cancellation=fields if isinstance(fields, CancellationFields) else None,
    )
