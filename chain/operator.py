"""The escrow's operator actions (auto-complete, emergency refund), sent idempotently.

A transaction the sender's ledger recorded for the (escrow, action, booking) is awaited, never
repeated (a retry after a crash, another replica); otherwise on-chain state is read first. One
in-process task per (booking id, action) means concurrent callers share one transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import structlog

from chain.contract import ContractAbi
from chain.errors import BookingStateError, ExecutionReverted, TransactionError
from chain.escrow import EscrowReader, OnChainBookingStatus, booking_id_bytes
from chain.hexutil import hash32
from chain.reason_codes import onchain_reason
from chain.sender import SentTransaction, TransactionSender

log = structlog.get_logger(__name__)


class OperatorAction(StrEnum):
    COMPLETE_SERVICE = "complete_service"
    EMERGENCY_CANCEL = "emergency_cancel"


class OperatorTxStatus(StrEnum):
    MINED = "mined"
    """Our transaction succeeded."""
    ALREADY_DONE = "already_done"
    """The booking was already final on chain (see ``booking_status``); no effect from us."""
    REVERTED = "reverted"
    """Our transaction was mined but reverted and the booking is still not final."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OperatorOutcome:
    """Outcome of one operator action on one booking."""

    action: OperatorAction
    chain_booking_id: str
    status: OperatorTxStatus
    booking_status: OnChainBookingStatus
    tx_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    nonce: int | None = None
    replacements: int = 0


class OperatorSender:
    """The operator key's escrow actions; each (booking, action) takes effect at most once."""

    def __init__(self, sender: TransactionSender, escrow: EscrowReader) -> None:
        self.sender = sender
        self.escrow = escrow
        self._abi: ContractAbi = escrow.contract.abi
        self._inflight: dict[tuple[str, OperatorAction], asyncio.Task[OperatorOutcome]] = {}

    async def complete_service(self, chain_booking_id: str | bytes) -> OperatorOutcome:
        """Release a paid booking's escrow (valid once its release time has passed)."""
        booking_id = booking_id_bytes(chain_booking_id)
        data = self._abi.encode_call("completeService", booking_id)
        return await self._once(OperatorAction.COMPLETE_SERVICE, booking_id, data)

    async def emergency_cancel(self, chain_booking_id: str | bytes, reason: str) -> OperatorOutcome:
        """Refund a paid booking in full to its customer; ``reason`` must be a reason code."""
        booking_id = booking_id_bytes(chain_booking_id)
        code = onchain_reason(reason)  # InvalidReason before anything is signed or sent
        data = self._abi.encode_call("emergencyCancelBooking", booking_id, code.value)
        return await self._once(OperatorAction.EMERGENCY_CANCEL, booking_id, data)

    async def _once(
        self, action: OperatorAction, booking_id: bytes, data: bytes
    ) -> OperatorOutcome:
        key = (hash32(booking_id), action)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(
                self._run(action, booking_id, data), name=f"{action} {key[0]}"
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: a cancelled caller (activity timeout) must not abandon a broadcast
        # transaction; the next caller for the same key joins the running task instead.
        return await asyncio.shield(task)

    def _forget(self, key: tuple[str, OperatorAction], task: asyncio.Task[OperatorOutcome]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            # Retrieved here so an error nobody awaited (cancelled caller) is not reported
            # as "never retrieved"; callers still get it through their shield.
            task.exception()

    async def _run(self, action: OperatorAction, booking_id: bytes, data: bytes) -> OperatorOutcome:
        booking_hex = hash32(booking_id)
        intent = f"{action}:{self.escrow.address.lower()}:{booking_hex}"
        sent = await self.sender.recorded(intent)
        if sent is not None:
            # Recorded before a crash or by another replica: wait on that one, never a second.
            sent = await self.sender.resume(sent)
        else:
            fresh = await self._send(action, booking_id, data, intent)
            if isinstance(fresh, OperatorOutcome):
                return fresh
            sent = fresh
        receipt = await self.sender.wait(sent)
        booking = await self.escrow.get_booking(booking_id, block=receipt.block_number)
        if receipt.succeeded:
            status = OperatorTxStatus.MINED
        elif booking.status.is_final:
            status = OperatorTxStatus.ALREADY_DONE
        else:
            status = OperatorTxStatus.REVERTED
        result = OperatorOutcome(
            action=action,
            chain_booking_id=booking_hex,
            status=status,
            booking_status=booking.status,
            tx_hash=receipt.tx_hash,
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            gas_used=receipt.gas_used,
            nonce=sent.nonce,
            replacements=sent.replacements,
        )
        log.info(
            "operator_tx_done",
            action=str(action),
            chain_booking_id=booking_hex,
            status=str(status),
            tx_hash=receipt.tx_hash,
            gas_used=receipt.gas_used,
        )
        return result

    async def _send(
        self, action: OperatorAction, booking_id: bytes, data: bytes, intent: str
    ) -> SentTransaction | OperatorOutcome:
        """Send after reading the chain; the outcome instead when there is nothing to send."""
        booking_hex = hash32(booking_id)
        booking = await self.escrow.get_booking(booking_id)
        if booking.status.is_final:
            return self._already_done(action, booking_hex, booking.status)
        if booking.status is OnChainBookingStatus.NONE:
            raise BookingStateError(f"booking {booking_hex} is not paid on chain; cannot {action}")
        try:
            return await self.sender.send(to=self.escrow.address, data=data, intent=intent)
        except ExecutionReverted as exc:
            explained = self._abi.explain(exc)
            # Someone (the customer, another operator process) may have finished it meanwhile.
            booking = await self.escrow.get_booking(booking_id)
            if booking.status.is_final:
                return self._already_done(action, booking_hex, booking.status)
            pending = await self.escrow.get_booking(booking_id, block="pending")
            if pending.status.is_final:
                # A transaction in the mempool (ours from before a restart, or anyone's)
                # already finalises it: wait for that instead of sending a doomed second one.
                final = await self._await_final(booking_id)
                return self._already_done(action, booking_hex, final)
            raise explained from None

    async def _await_final(self, booking_id: bytes) -> OnChainBookingStatus:
        config = self.sender.config
        waited = 0.0
        while waited < config.receipt_timeout_seconds:
            booking = await self.escrow.get_booking(booking_id)
            if booking.status.is_final:
                return booking.status
            await asyncio.sleep(config.poll_interval_seconds)
            waited += config.poll_interval_seconds
        raise TransactionError(
            f"booking {hash32(booking_id)} is final only in the pending state after "
            f"{config.receipt_timeout_seconds:g}s"
        )

    @staticmethod
    def _already_done(
        action: OperatorAction, booking_hex: str, status: OnChainBookingStatus
    ) -> OperatorOutcome:
        log.info(
            "operator_tx_skipped",
            action=str(action),
            chain_booking_id=booking_hex,
            booking_status=status.name,
        )
        return OperatorOutcome(
            action=action,
            chain_booking_id=booking_hex,
            status=OperatorTxStatus.ALREADY_DONE,
            booking_status=status,
        )
