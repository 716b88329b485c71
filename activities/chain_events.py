"""Decoded escrow events (``chain.events``) as the workflows' signal payload.

The listener and the polling activity both go through ``signal_from_event`` so a pushed and a
polled event carry the identical identity and fields, and the workflow's dedupe sees one event.
"""

from __future__ import annotations

from chain.events import BookingCancelled, BookingCreatedAndPaid, DecodedEvent, ServiceCompleted
from workflows.types import (
    CancellationFields,
    ChainEventKind,
    ChainEventSignal,
    CompletionFields,
    EventIdentity,
    PaymentFields,
)


def signal_from_event(event: DecodedEvent) -> ChainEventSignal:
    """The ``payment_confirmed`` / ``service_completed`` / ``booking_cancelled`` payload."""
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
