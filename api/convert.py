"""Conversions at the HTTP edge: a request to the workflow's input, rows and results to responses."""

from __future__ import annotations

import uuid

from api.errors import InvalidField
from api.money import format_units
from api.schemas import (
    BookingAuthorizationMessage,
    BookingCreate,
    BookingDetail,
    BookingEventPublic,
    BookingLive,
    BookingPublic,
    CancellationAuthorizationMessage,
    CancellationPublic,
    EmergencyCancelPublic,
    PaymentAuthorizationPublic,
    PaymentSeenPublic,
    TransactionKindName,
    TransactionReportPublic,
)
from bookme.settings import Settings
from chain.eip712 import chain_booking_id
from db.models import Booking, BookingEvent
from db.statuses import BookingStatus
from workflows.constants import booking_workflow_id
from workflows.types import (
    BookingInput,
    BookingView,
    CancellationResult,
    EmergencyCancelResult,
    PaymentAuthorization,
    PaymentSeen,
    RecordedBooking,
    TransactionReport,
    seen_summary,
)


def booking_input(body: BookingCreate, settings: Settings, booking_id: uuid.UUID) -> BookingInput:
    """The booking workflow's input for a create request; 422 over the amount cap."""
    units = body.amount_units
    if units > settings.max_booking_amount_units:
        cap = format_units(settings.max_booking_amount_units)
        raise InvalidField("body.amount", f"must not exceed the cap of {cap} USDC")
    return BookingInput(
        booking_id=str(booking_id),
        chain_booking_id=chain_booking_id(booking_id),
        customer_wallet=body.customer_wallet,
        provider_wallet=body.provider_wallet,
        inviter_wallet=body.inviter_wallet,
        amount_units=units,
        scheduled_at=body.scheduled_at_utc(),
        service_id=body.service_id,
        customer_id=body.customer_id,
        provider_id=body.provider_id,
        policy=settings.booking_policy(),
    )


def booking_public(row: Booking) -> BookingPublic:
    """The stored booking."""
    units = row.amount_units
    return BookingPublic(
        id=row.id,
        chain_booking_id=row.blockchain_booking_id,
        workflow_id=row.workflow_id,
        status=BookingStatus(row.status),
        status_reason=row.status_reason,
        service_id=row.service_id,
        customer_id=row.customer_id,
        provider_id=row.provider_id,
        customer_wallet=row.customer_wallet,
        provider_wallet=row.provider_wallet,
        inviter_wallet=row.inviter_wallet,
        amount=None if units is None else format_units(units),
        amount_units=None if units is None else str(units),
        platform_fee_bps=row.platform_fee_bps,
        inviter_fee_bps=row.inviter_fee_bps,
        scheduled_at=row.scheduled_at,
        blockchain_tx_hash=row.blockchain_tx_hash,
        blockchain_confirmed_at=row.blockchain_confirmed_at,
        completion_tx_hash=row.completion_tx_hash,
        cancellation_tx_hash=row.cancellation_tx_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def recorded_public(recorded: RecordedBooking) -> BookingPublic:
    """The booking its workflow just recorded, as `booking_public` shows its row (no read).

    Only a recorded booking has ``stored``; nothing was sent on chain for it yet.
    """
    booking, view, stored = recorded.booking, recorded.view, recorded.stored
    assert stored is not None, "an unrecorded booking has no public form"
    platform_bps, inviter_bps = booking.policy.fee_rates(
        has_inviter=booking.inviter_wallet is not None
    )
    return BookingPublic(
        id=uuid.UUID(booking.booking_id),
        chain_booking_id=booking.chain_booking_id.lower(),
        workflow_id=booking_workflow_id(booking.booking_id),
        status=BookingStatus(view.status.value),
        status_reason=view.reason,
        service_id=booking.service_id,
        customer_id=booking.customer_id,
        provider_id=booking.provider_id,
        customer_wallet=booking.customer_wallet,
        provider_wallet=booking.provider_wallet,
        inviter_wallet=booking.inviter_wallet,
        amount=format_units(booking.amount_units),
        amount_units=str(booking.amount_units),
        platform_fee_bps=platform_bps,
        inviter_fee_bps=inviter_bps,
        scheduled_at=booking.scheduled_at,
        blockchain_tx_hash=None,
        blockchain_confirmed_at=None,
        completion_tx_hash=None,
        cancellation_tx_hash=None,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def booking_live(view: BookingView) -> BookingLive:
    """The workflow's live view, without the signed authorizations it holds."""
    return BookingLive(
        status=BookingStatus(view.status.value),
        reason=view.reason,
        release_at=view.release_at,
        payment_deadline=view.payment_deadline,
        monitoring_until=view.monitoring_until,
        monitored_tx_hash=view.monitored_tx_hash,
        refund_tx_hash=view.refund_tx_hash,
        completion_tx_hash=view.completion_tx_hash,
        updated_at=view.updated_at,
        payment_seen=None if view.payment_seen is None else payment_seen_public(view.payment_seen),
    )


def payment_seen_public(seen: PaymentSeen) -> PaymentSeenPublic:
    """The unconfirmed payment, with the words the stream uses for it."""
    return PaymentSeenPublic(
        summary=seen_summary(seen.confirmations, seen.required),
        tx_hash=seen.tx_hash,
        block_number=seen.block_number,
        confirmations=seen.confirmations,
        required=seen.required,
        seen_at=seen.seen_at,
    )


def booking_detail(row: Booking, view: BookingView | None) -> BookingDetail:
    """Row plus live view."""
    return BookingDetail(
        **booking_public(row).model_dump(), live=None if view is None else booking_live(view)
    )


def event_public(row: BookingEvent) -> BookingEventPublic:
    """One audit entry."""
    return BookingEventPublic(
        id=row.id,
        booking_id=row.booking_id,
        kind=row.kind,
        from_status=None if row.from_status is None else BookingStatus(row.from_status),
        to_status=None if row.to_status is None else BookingStatus(row.to_status),
        reason=row.reason,
        actor=row.actor,
        chain_id=row.chain_id,
        tx_hash=row.tx_hash,
        log_index=row.log_index,
        details=row.details or {},
        created_at=row.created_at,
    )


def payment_authorization_public(auth: PaymentAuthorization) -> PaymentAuthorizationPublic:
    """The signed payment authorization in the shape the wallet submits."""
    return PaymentAuthorizationPublic(
        authorization=BookingAuthorizationMessage(
            booking_id=auth.chain_booking_id,
            customer=auth.customer,
            provider=auth.provider,
            inviter=auth.inviter,
            amount=str(auth.amount),
            platform_fee_rate=str(auth.platform_fee_rate),
            inviter_fee_rate=str(auth.inviter_fee_rate),
            release_time=str(auth.release_time),
            expiry=str(auth.expiry),
            nonce=str(auth.nonce),
        ),
        signature=auth.signature,
        contract=auth.contract,
        chain_id=auth.chain_id,
        expires_at=auth.expires_at,
    )


def cancellation_public(result: CancellationResult) -> CancellationPublic:
    """Cancelled-at-once, or the signed cancellation authorization."""
    status = BookingStatus(result.status.value)
    auth = result.authorization
    if auth is None:
        return CancellationPublic(status=status, cancels_at=result.cancels_at)
    return CancellationPublic(
        status=status,
        authorization=CancellationAuthorizationMessage(
            booking_id=auth.chain_booking_id,
            customer_amount=str(auth.split.customer_amount),
            provider_amount=str(auth.split.provider_amount),
            platform_amount=str(auth.split.platform_amount),
            inviter_amount=str(auth.split.inviter_amount),
            reason=auth.reason,
            expiry=str(auth.expiry),
            nonce=str(auth.nonce),
        ),
        signature=auth.signature,
        contract=auth.contract,
        chain_id=auth.chain_id,
        expires_at=auth.expires_at,
    )


def transaction_report_public(report: TransactionReport) -> TransactionReportPublic:
    """The accepted transaction report."""
    return TransactionReportPublic(
        tx_hash=report.tx_hash,
        kind=TransactionKindName(report.kind.value),
        monitoring_until=report.monitoring_until,
    )


def emergency_cancel_public(result: EmergencyCancelResult) -> EmergencyCancelPublic:
    """The operator refund that was sent."""
    return EmergencyCancelPublic(status=BookingStatus(result.status.value), tx_hash=result.tx_hash)
