"""A recording SignalSink that applies each event once, like a workflow deduping by identity."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from listener.sink import SignalOutcome
from workflows.types import ChainEventSignal


class SimulatedCrash(Exception):
    """Raised by the fake sink to stand for the process dying mid-batch."""


@dataclass
class Call:
    method: str
    booking_id: str | None
    event: ChainEventSignal


@dataclass
class RecordingSink:
    """Records every call; `applied` holds event keys applied once (reverts remove them)."""

    crash_after: int | None = None
    calls: list[Call] = field(default_factory=list)
    applied: dict[str, ChainEventSignal] = field(default_factory=dict)
    applications: Counter[str] = field(default_factory=Counter)
    reverted: list[ChainEventSignal] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Bookings (and orphans, by chain booking id) whose workflow has finished.
    closed: set[str] = field(default_factory=set)
    closed_orphans: set[str] = field(default_factory=set)

    def _record(self, method: str, booking_id: str | None, event: ChainEventSignal) -> None:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise SimulatedCrash(f"crash before signal #{len(self.calls) + 1}")
        self.calls.append(Call(method, booking_id, event))
        self.arrived.set()

    def _apply(self, event: ChainEventSignal) -> None:
        # A workflow ignores an event it already applied (same identity, same block).
        if event.key not in self.applied:
            self.applied[event.key] = event
            self.applications[event.key] += 1

    async def deliver(self, booking_id: str, event: ChainEventSignal) -> SignalOutcome:
        self._record("deliver", booking_id, event)
        if booking_id in self.closed:
            return SignalOutcome.WORKFLOW_CLOSED
        self._apply(event)
        return SignalOutcome.SIGNALLED

    async def orphan(self, event: ChainEventSignal) -> SignalOutcome:
        self._record("orphan", None, event)
        if event.chain_booking_id in self.closed_orphans:
            return SignalOutcome.WORKFLOW_CLOSED
        self._apply(event)
        return SignalOutcome.STARTED

    async def revert(self, booking_id: str | None, event: ChainEventSignal) -> SignalOutcome:
        self._record("revert", booking_id, event)
        if booking_id in self.closed:
            return SignalOutcome.WORKFLOW_CLOSED
        if booking_id is None and event.chain_booking_id in self.closed_orphans:
            return SignalOutcome.DROPPED
        self.reverted.append(event)
        self.applied.pop(event.key, None)
        return SignalOutcome.SIGNALLED

    def keys(self, method: str) -> list[str]:
        return [c.event.key for c in self.calls if c.method == method]
