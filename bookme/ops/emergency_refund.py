"""``bookme emergency-cancel``: refund a paid booking in full, with or without its workflow.

The workflow's ``emergency_cancel`` update is tried first: it sends the refund and records it in
the booking's history. When the workflow cannot do it (closed, terminated, never started,
Temporal down, or it refuses: a wrong state, a spent budget), the chain decides: a booking still
PAID there is refunded directly with the operator key, through `OperatorSender`, which reads the
contract (and the pending block) before sending, so a second run or a concurrent workflow refund
never sends twice. The outcome is then written where a workflow cannot:

- booking row, workflow closed or missing: the booking becomes CANCELLED (a FAILED one stays
  FAILED), with the refund's event mark, refund legs and an audit row naming the operator;
- booking row, workflow open: an audit row only; the workflow owns the status and applies the
  BookingCancelled event the listener delivers to it;
- no booking row (an orphan payment): the payment's and the refund's ``blockchain_events`` rows,
  as the orphan workflow records them.

On chain the refund carries only the code ``emergency_refund``; the operator's name and the
free-text reason stay in Postgres.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus

from activities.booking_store import BookingStore
from activities.reconcile.logs import read_escrow_events
from activities.tx_ledger import PostgresTxLedger
from bookme.ops.booking_refs import is_chain_booking_id
from bookme.ops.contract_admin import operator_key
from bookme.ops.deps import connect_temporal, database, escrow_reader
from bookme.ops.errors import OpsError, Refused
from bookme.ops.temporal_errors import answered
from bookme.settings import Settings
from chain.eip712 import chain_booking_id
from chain.errors import FeeCapExceeded
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.events import BookingCancelled, BookingCreatedAndPaid, DecodedEvent
from chain.keys import TransactionKey
from chain.operator import OperatorSender, OperatorTxStatus
from chain.reason_codes import OnChainReason
from chain.sender import SenderConfig, TransactionSender
from db.models import Booking
from db.statuses import BookingStatus as DbStatus
from workflows import booking_workflow_id
from workflows.audit import AuditAction
from workflows.booking import MAX_REASON_LENGTH
from workflows.client import BookingClient
from workflows.constants import orphan_workflow_id
from workflows.event_checks import settlement_legs
from workflows.event_codec import signal_from_event
from workflows.types import (
    BookingStatus,
    ChainEventSignal,
    EmergencyCancelRequest,
    EventOutcome,
    OrphanRecord,
    Settlement,
    TransitionRecord,
)

# The audit kind of a refund sent around the workflow (the workflow's own is emergency_cancel_sent).
OPERATOR_REFUND = AuditAction.OPERATOR_REFUND


@dataclass(frozen=True, kw_only=True)
class RefundTarget:
    """What the operator named: a booking (with its row, if any) or an orphan payment."""

    chain_booking_id: str
    booking_id: str | None  # None: no booking row (orphan)
    db_status: DbStatus | None

    @property
    def workflow_id(self) -> str:
        if self.booking_id is None:
            return orphan_workflow_id(self.chain_booking_id)
        return booking_workflow_id(self.booking_id)


async def emergency_cancel(
    settings: Settings, booking_ref: str, *, operator: str, reason: str, out: IO[str]
) -> int:
    """Refund in full through the workflow, else directly on chain; record the outcome."""
    if not operator.strip():
        raise OpsError("--operator must name who asks")
    if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise OpsError(f"--reason must be 1..{MAX_REASON_LENGTH} characters")
    target = await _resolve(settings, booking_ref)
    why = "no booking row: an orphan payment"
    if target.booking_id is not None:
        try:
            workflow = BookingClient(await connect_temporal(settings), target.workflow_id)
            request = EmergencyCancelRequest(operator=operator, reason=reason)
            result = await answered(
                workflow.emergency_cancel(request), target.workflow_id, "emergency_cancel"
            )
        except OpsError as exc:
            why = str(exc)
        else:
            sent = f"refund tx {result.tx_hash}" if result.tx_hash else "already settled on chain"
            out.write(f"{target.workflow_id}: {result.status.value}; {sent}\n")
            return 0
    out.write(f"{target.workflow_id}: the workflow did not refund ({why}); checking the chain\n")
    workflow_open = target.booking_id is not None and await _workflow_open(settings, target)
    return await _refund_directly(
        settings, target, operator=operator, reason=reason, workflow_open=workflow_open, out=out
    )


async def _resolve(settings: Settings, ref: str) -> RefundTarget:
    """A booking id, ``booking-<id>``, a chain booking id or ``orphan-<chain id>``."""
    text = ref.strip().removeprefix("booking-").removeprefix("orphan-")
    booking_id: uuid.UUID | None = None
    try:
        booking_id = uuid.UUID(text)
    except ValueError:
        if not is_chain_booking_id(text):
            raise OpsError(f"{ref!r} is neither a booking id nor a chain booking id") from None
    async with database(settings) as sessions, sessions() as session:
        # A marketplace row (no workflow) is no booking of ours: handled like a missing row,
        # so the chain decides (read before anything is sent).
        query = select(Booking.id, Booking.status, Booking.blockchain_booking_id).where(
            Booking.managed
        )
        if booking_id is not None:
            query = query.where(Booking.id == booking_id)
        else:
            query = query.where(Booking.blockchain_booking_id == text.lower())
        row = (await session.execute(query)).first()
    if row is not None:
        return RefundTarget(
            chain_booking_id=(row.blockchain_booking_id or chain_booking_id(row.id)).lower(),
            booking_id=str(row.id),
            db_status=DbStatus(row.status),
        )
    if booking_id is not None:
        # Never recorded (the workflow died before its first write): its chain id still holds.
        return RefundTarget(
            chain_booking_id=chain_booking_id(booking_id).lower(),
            booking_id=None,
            db_status=None,
        )
    return RefundTarget(chain_booking_id=text.lower(), booking_id=None, db_status=None)


async def _workflow_open(settings: Settings, target: RefundTarget) -> bool:
    try:
        workflow = BookingClient(await connect_temporal(settings), target.workflow_id)
        description = await answered(workflow.describe(), target.workflow_id, "describe")
    except OpsError:
        return False  # unknown counts as closed: its outcome is then written to Postgres
    return description.status is WorkflowExecutionStatus.RUNNING


async def _refund_directly(
    settings: Settings,
    target: RefundTarget,
    *,
    operator: str,
    reason: str,
    workflow_open: bool,
    out: IO[str],
) -> int:
    key = operator_key(settings)
    async with escrow_reader(settings) as escrow:
        onchain = await escrow.get_booking(target.chain_booking_id)
        if onchain.status is not OnChainBookingStatus.PAID:
            out.write(
                f"{target.chain_booking_id} is {onchain.status.name} on chain: nothing to refund, "
                "nothing sent\n"
            )
            return 0 if onchain.status is OnChainBookingStatus.CANCELLED else 1
        async with database(settings) as sessions:
            try:
                result = await _operator(settings, escrow, key, sessions).emergency_cancel(
                    target.chain_booking_id, OnChainReason.EMERGENCY_REFUND
                )
            except FeeCapExceeded as exc:  # nothing was sent; raise the cap for this run if must
                raise Refused(f"{exc} (BOOKME_OPERATOR_MAX_FEE_PER_GAS_WEI)") from None
        if result.status is OperatorTxStatus.REVERTED:
            raise Refused(f"the refund {result.tx_hash} reverted; the booking is still PAID")
        if result.tx_hash is None or result.block_number is None:
            out.write(
                f"{target.chain_booking_id} became {result.booking_status.name} on chain "
                "meanwhile (another refund or settlement); nothing sent\n"
            )
            return 0
        refund = await _refund_event(escrow, settings, target, result.block_number, result.tx_hash)
        out.write(f"{target.chain_booking_id}: refunded on chain, tx {result.tx_hash}\n")
        where = await _record(
            settings,
            escrow,
            target,
            refund,
            operator=operator,
            reason=reason,
            workflow_open=workflow_open,
        )
    out.write(f"recorded: {where}\n")
    return 0


def _operator(
    settings: Settings,
    escrow: EscrowReader,
    key: TransactionKey,
    sessions: async_sessionmaker[AsyncSession],
) -> OperatorSender:
    """The operator key on the workers' nonce ledger, so a refund sent from here never takes a
    nonce a worker replica holds, and waits on a refund a worker already recorded."""
    sender = TransactionSender(
        escrow.contract.client,
        key,
        chain_id=settings.chain_id,
        config=SenderConfig(
            confirmations=settings.confirmations,
            max_fee_per_gas_cap=settings.operator_max_fee_per_gas_wei,
        ),
        ledger=PostgresTxLedger(sessions, chain_id=settings.chain_id, sender=key.address),
    )
    return OperatorSender(sender, escrow)


async def _booking_events(
    escrow: EscrowReader, settings: Settings, target: RefundTarget, from_block: int, to_block: int
) -> list[DecodedEvent]:
    return await read_escrow_events(
        escrow.contract.client,
        escrow.address,
        chain_id=settings.chain_id,
        from_block=from_block,
        to_block=to_block,
        max_block_range=settings.listener_max_block_range,
        chain_booking_id=target.chain_booking_id,
    )


async def _refund_event(
    escrow: EscrowReader, settings: Settings, target: RefundTarget, block: int, tx_hash: str
) -> ChainEventSignal:
    """Our transaction's BookingCancelled log, as the listener would deliver it."""
    for event in await _booking_events(escrow, settings, target, block, block):
        if isinstance(event, BookingCancelled) and event.identity.tx_hash.lower() == tx_hash:
            return signal_from_event(event)
    raise OpsError(f"refund {tx_hash} mined but its BookingCancelled log is not in block {block}")


async def _record(
    settings: Settings,
    escrow: EscrowReader,
    target: RefundTarget,
    refund: ChainEventSignal,
    *,
    operator: str,
    reason: str,
    workflow_open: bool,
) -> str:
    """Write the refund where the workflow would have; returns where it went."""
    now = datetime.now(UTC)
    async with database(settings) as sessions:
        store = BookingStore(sessions, escrow.address, actor=f"operator:{operator}")
        if target.booking_id is None:
            payment = await _payment_event(escrow, settings, target)
            await store.record_orphan(
                OrphanRecord(
                    chain_booking_id=target.chain_booking_id,
                    action=f"{OPERATOR_REFUND} by {operator}: {reason}",
                    payment=payment,
                    refund=refund,
                    refund_tx_hash=refund.identity.tx_hash,
                    occurred_at=now,
                )
            )
            return "the orphan's blockchain_events rows (payment and refund)"
        before = BookingStatus((await _current_status(sessions, target.booking_id)).value)
        record = _refund_transition(
            target.booking_id,
            before,
            refund,
            operator=operator,
            reason=reason,
            closes=not workflow_open,
            at=now,
        )
        await store.apply_transition(record)
    if workflow_open:
        return f"audit row {OPERATOR_REFUND} (the open workflow applies the chain event)"
    return f"booking {before.value} -> {record.to_status.value}, refund legs and audit row {OPERATOR_REFUND}"


def _refund_transition(
    booking_id: str,
    before: BookingStatus,
    refund: ChainEventSignal,
    *,
    operator: str,
    reason: str,
    closes: bool,
    at: datetime,
) -> TransitionRecord:
    """The audit row; when no open workflow will apply the event (`closes`), the event, the
    refund legs and the status too (CANCELLED, or FAILED kept)."""
    after = before if not closes or before is BookingStatus.FAILED else BookingStatus.CANCELLED
    settlement = None
    if closes:
        customer, provider, platform, inviter = settlement_legs(refund)
        settlement = Settlement(
            kind=refund.kind,
            customer_amount=customer,
            provider_amount=provider,
            platform_amount=platform,
            inviter_amount=inviter,
            emergency=True,
        )
    return TransitionRecord(
        booking_id=booking_id,
        dedupe_key=f"{booking_id}:{OPERATOR_REFUND}:{refund.key}",
        from_status=before,
        to_status=after,
        action=OPERATOR_REFUND,
        reason=f"emergency by {operator}: {reason}",
        event=refund if closes else None,
        event_outcome=EventOutcome.PROCESSED if closes else None,
        settlement=settlement,
        tx_hash=refund.identity.tx_hash,
        occurred_at=at,
    )


async def _current_status(sessions: async_sessionmaker[AsyncSession], booking_id: str) -> DbStatus:
    async with sessions() as session:
        status = (
            await session.execute(select(Booking.status).where(Booking.id == uuid.UUID(booking_id)))
        ).scalar_one()
    return DbStatus(status)


async def _payment_event(
    escrow: EscrowReader, settings: Settings, target: RefundTarget
) -> ChainEventSignal:
    """The orphan's payment log (its record is keyed on it)."""
    head = await escrow.contract.client.block_number()
    start = settings.reconcile_from_block
    for event in await _booking_events(escrow, settings, target, start, head):
        if isinstance(event, BookingCreatedAndPaid):
            return signal_from_event(event)
    raise OpsError(
        f"no payment log for {target.chain_booking_id} since block {start} "
        "(BOOKME_RECONCILE_FROM_BLOCK)"
    )
