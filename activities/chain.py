"""``ChainActivities``: what the workflows ask of the chain (reads, and the operator's sends)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import structlog
from temporalio import activity

from activities.heartbeat import beat, heartbeating
from chain.client import ChainClient
from chain.errors import (
    BookingStateError,
    ExecutionReverted,
    InvalidReason,
    ProviderUnavailable,
    TransactionError,
)
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.events import ESCROW_EVENT_TOPICS, DecodedEvent, decode_escrow_logs
from chain.operator import OperatorOutcome, OperatorSender, OperatorTxStatus
from chain.reason_codes import OnChainReason
from workflows import constants as c
from workflows.errors import ActivityRejected
from workflows.event_codec import signal_from_event
from workflows.types import (
    ChainEventSignal,
    ChainObservation,
    ObserveRequest,
    OnChainStatus,
    OperatorTxRequest,
    OperatorTxResult,
    TxStatus,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

ONCHAIN_STATUS = {
    OnChainBookingStatus.NONE: OnChainStatus.NONE,
    OnChainBookingStatus.PAID: OnChainStatus.PAID,
    OnChainBookingStatus.COMPLETED: OnChainStatus.COMPLETED,
    OnChainBookingStatus.CANCELLED: OnChainStatus.CANCELLED,
}


class ChainActivities:
    """Reads through the escrow reader; sends through the idempotent operator sender."""

    def __init__(
        self,
        client: ChainClient,
        escrow: EscrowReader,
        operator: OperatorSender | None,
        *,
        chain_id: int,
        log_lookback_blocks: int = 20_000,
        max_block_range: int = 2_000,
    ) -> None:
        self._client = client
        self._escrow = escrow
        self._operator = operator
        self._chain_id = chain_id
        self._lookback = log_lookback_blocks
        self._max_range = max_block_range

    @activity.defn(name=c.OBSERVE_BOOKING)
    async def observe_booking(self, request: ObserveRequest) -> ChainObservation:
        """Confirmed events of the booking (from the tx receipt, else the logs) and its state."""
        head = await self._client.block_number()
        final_block = head - request.confirmations
        events: list[ChainEventSignal] = []
        tx_status = TxStatus.UNKNOWN
        if request.tx_hash:
            receipt = await self._client.get_transaction_receipt(request.tx_hash)
            if receipt is None:
                known = await self._client.get_transaction(request.tx_hash)
                tx_status = TxStatus.PENDING if known is not None else TxStatus.UNKNOWN
            elif not receipt.succeeded:
                tx_status = TxStatus.REVERTED
            else:
                tx_status = TxStatus.SUCCEEDED
                if receipt.block_number <= final_block:
                    events = self._ours(
                        decode_escrow_logs(receipt.logs, self._chain_id, self._escrow.address),
                        request.chain_booking_id,
                    )
        booking = await self._escrow.get_booking(request.chain_booking_id)
        onchain = ONCHAIN_STATUS[booking.status]
        if not events and onchain is not OnChainStatus.NONE:
            events = await self._search_logs(request.chain_booking_id, final_block)
        return ChainObservation(
            events=events,
            tx_status=tx_status,
            onchain_status=onchain,
            final_block_timestamp=(
                await self._block_timestamp(max(0, final_block)) if request.chain_time else None
            ),
        )

    async def _block_timestamp(self, number: int) -> int:
        block = await self._client.get_block(number)
        if block is None:  # a provider behind the head another one answered: read again
            raise ProviderUnavailable(f"block {number} not found")
        return block.timestamp

    @staticmethod
    def _ours(decoded: list[DecodedEvent], chain_booking_id: str) -> list[ChainEventSignal]:
        wanted = chain_booking_id.lower()
        return [signal_from_event(e) for e in decoded if e.booking_id.lower() == wanted]

    async def _search_logs(self, chain_booking_id: str, final_block: int) -> list[ChainEventSignal]:
        """The booking's escrow events in recent confirmed blocks, newest ranges first."""
        found: list[ChainEventSignal] = []
        lowest = max(0, final_block - self._lookback)
        to_block = final_block
        while to_block >= lowest and not found:
            from_block = max(lowest, to_block - self._max_range + 1)
            raw = await self._client.get_logs(
                from_block=from_block,
                to_block=to_block,
                address=self._escrow.address,
                topics=[list(ESCROW_EVENT_TOPICS), chain_booking_id.lower()],
            )
            found = self._ours(
                decode_escrow_logs(raw, self._chain_id, self._escrow.address), chain_booking_id
            )
            to_block = from_block - 1
            beat()
        return found

    def _require_operator(self) -> OperatorSender:
        if self._operator is None:
            raise ActivityRejected(
                "no operator key configured (BOOKME_OPERATOR_PRIVATE_KEY or _KEY_FILE)",
                error_type=c.SIGNER_UNAVAILABLE,
            )
        return self._operator

    @activity.defn(name=c.SEND_COMPLETE_SERVICE)
    async def send_complete_service(self, request: OperatorTxRequest) -> OperatorTxResult:
        """completeService from the operator key; at most once per booking."""
        operator = self._require_operator()
        result = await _operator_call(operator.complete_service(request.chain_booking_id))
        return _result(result, "completeService")

    @activity.defn(name=c.SEND_EMERGENCY_CANCEL)
    async def send_emergency_cancel(self, request: OperatorTxRequest) -> OperatorTxResult:
        """emergencyCancelBooking (full refund to the customer) from the operator key."""
        operator = self._require_operator()
        reason = request.reason or OnChainReason.EMERGENCY_REFUND
        result = await _operator_call(operator.emergency_cancel(request.chain_booking_id, reason))
        return _result(result, "emergencyCancelBooking")


async def _operator_call(call: Awaitable[OperatorOutcome]) -> OperatorOutcome:
    """Run a send, heartbeating while it waits to be mined; chain refusals are final."""
    try:
        return await heartbeating(call)
    except (BookingStateError, ExecutionReverted, InvalidReason) as exc:
        # Final for this attempt. "ReleaseTimeNotReached" (the chain's clock lags ours) is
        # not final for the booking: the workflow records auto_complete_failed and tries
        # again after a monitoring window, which beats minutes of activity backoff.
        raise ActivityRejected(str(exc), error_type=c.CHAIN_REJECTED) from None
    except TransactionError as exc:
        # Dropped or stuck: a retry asks the idempotent sender again, which reads the chain first.
        log.warning("operator_tx_failed", error=str(exc))
        raise


def _result(result: OperatorOutcome, function: str) -> OperatorTxResult:
    if result.status is OperatorTxStatus.REVERTED:
        raise ActivityRejected(
            f"{function} reverted in {result.tx_hash}", error_type=c.CHAIN_REJECTED
        )
    already = result.booking_status.name if result.status is OperatorTxStatus.ALREADY_DONE else None
    return OperatorTxResult(tx_hash=result.tx_hash, already_final_as=already)
