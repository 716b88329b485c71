"""Where delivered events go: the `SignalSink` protocol the listener core talks to."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from workflows.types import ChainEventSignal


class SignalOutcome(StrEnum):
    """What became of one signal (metrics label); transient failures raise instead."""

    SIGNALLED = "signalled"
    STARTED = "started"
    # The workflow already finished: a late duplicate, nothing left to tell.
    WORKFLOW_CLOSED = "workflow_closed"
    # Nobody to tell (e.g. a revert for an event of an unknown booking).
    DROPPED = "dropped"


class SignalSink(Protocol):
    """Signals workflows; raises on transient trouble so the listener retries the batch."""

    async def deliver(self, booking_id: str, event: ChainEventSignal) -> SignalOutcome:
        """Tell the booking's workflow about a confirmed event."""
        ...

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        """Tell the workflow that a delivered event was orphaned by a reorg."""
        ...

    async def orphan(self, event: ChainEventSignal) -> SignalOutcome:
        """An event whose chain booking id matches no booking (payments start a refund)."""
        ...
