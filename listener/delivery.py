"""Store then signal: each event lands in `blockchain_events` before any workflow hears of it.

Signals go out concurrently per booking (bounded), and in chain order within one booking so
a workflow never sees a completion before the payment it completes.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence

import structlog

from chain.events import DecodedEvent
from db.statuses import BlockchainEventStatus
from listener.metrics import ListenerMetrics
from listener.observed import ObservedEvent, observed
from listener.sink import SignalOutcome, SignalSink
from listener.store import ListenerStore, StoredEvent
from workflows.event_codec import signal_from_row
from workflows.types import ChainEventKind, ChainEventSignal, EventIdentity

log = structlog.get_logger(__name__)

_ORPHAN_KINDS = frozenset({ChainEventKind.PAYMENT, ChainEventKind.CANCELLATION})
# Already applied by the workflow (or refused by it): nothing left to tell.
_DONE = frozenset({BlockchainEventStatus.PROCESSED.value, BlockchainEventStatus.FAILED.value})


def goes_to_orphan_refund(kind: ChainEventKind, *, booking_holds_tx: bool) -> bool:
    """Whether an event its closed booking workflow never applied belongs to an orphan refund:
    a payment the booking row does not hold, or a cancellation (the refund's) it does not hold.
    """
    return not booking_holds_tx and kind in _ORPHAN_KINDS


class BookingCache:
    """Chain booking id -> booking id; only hits are kept (a booking may appear later)."""

    def __init__(self, store: ListenerStore, size: int) -> None:
        self._store = store
        self._size = size
        self._known: OrderedDict[str, str] = OrderedDict()

    async def resolve(self, chain_booking_ids: Iterable[str]) -> dict[str, str]:
        wanted = {c.lower() for c in chain_booking_ids}
        found = {c: self._known[c] for c in wanted if c in self._known}
        for cbid in found:
            self._known.move_to_end(cbid)
        missing = wanted - found.keys()
        if missing:
            fresh = await self._store.find_bookings(missing)
            found.update(fresh)
            self._known.update(fresh)
            while len(self._known) > self._size:
                self._known.popitem(last=False)
        return found


class Deliverer:
    """Stores a batch of events, then signals their workflows."""

    def __init__(
        self,
        store: ListenerStore,
        sink: SignalSink,
        metrics: ListenerMetrics,
        *,
        concurrency: int,
        cache_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._sink = sink
        self._metrics = metrics
        self._limit = asyncio.Semaphore(concurrency)
        self._clock = clock
        self.bookings = BookingCache(store, cache_size)

    async def deliver(self, events: Sequence[ObservedEvent]) -> None:
        """Store and signal; raises (and the checkpoint stays put) if any signal failed."""
        if not events:
            return
        bookings = await self.bookings.resolve(e.signal.chain_booking_id for e in events)
        statuses = await self._store.store_events(events, bookings)
        groups: dict[str, list[Callable[[], Awaitable[None]]]] = {}
        closed: list[tuple[str | None, ObservedEvent]] = []
        for event in events:
            kind = event.signal.kind.value
            if statuses.get(event.key) in _DONE:
                self._metrics.events.labels(kind, "already_processed").inc()
                continue
            booking = bookings.get(event.signal.chain_booking_id.lower())
            group = booking or f"orphan:{event.signal.chain_booking_id.lower()}"
            groups.setdefault(group, []).append(self._signal_call(booking, event, closed))
        await self._run_groups(groups.values())
        closed = await self._refund_late_payments(closed)
        # Nobody is left to apply these: record an outcome rather than leave them RECEIVED.
        orphans = {event.key for booking, event in closed if booking is None}
        for key, status in (await self._store.close_out(closed)).items():
            # An orphan payment nobody will refund needs an operator: louder than the rest.
            report = log.error if key in orphans else log.warning
            report("listener_event_closed_out", event_key=key, status=status, orphan=key in orphans)

    async def _refund_late_payments(
        self, closed: list[tuple[str | None, ObservedEvent]]
    ) -> list[tuple[str | None, ObservedEvent]]:
        """Hand a closed booking's unheld payment (and its refund's cancellation) to the orphan
        refund; returns what is still left to close out.

        The booking workflow closed without this payment (it judged the authorization dead by a
        clock the chain lagged behind), so the money sits in escrow for a booking that is over:
        exactly an orphan payment, refunded once by the workflow keyed by the chain booking id.
        """
        remaining: list[tuple[str | None, ObservedEvent]] = []
        for booking, event in closed:
            kind = event.signal.kind
            if booking is None or not goes_to_orphan_refund(
                kind, booking_holds_tx=await self._store.holds_tx(booking, event)
            ):
                remaining.append((booking, event))
                continue
            outcome = await self._sink.orphan(event.signal)
            self._metrics.events.labels(kind.value, f"closed_booking_{outcome.value}").inc()
            if kind is ChainEventKind.PAYMENT:
                log.warning(
                    "listener_late_payment_for_closed_booking",
                    booking_id=booking,
                    event_key=event.key,
                    outcome=outcome.value,
                )
            if outcome is SignalOutcome.STARTED or outcome is SignalOutcome.SIGNALLED:
                continue  # the orphan refund records the event's outcome
            # The refund had already finished (a payment), or none is running (a cancellation).
            remaining.append((None if kind is ChainEventKind.PAYMENT else booking, event))
        return remaining

    async def resolve_bookings(self, chain_booking_ids: Iterable[str]) -> dict[str, str]:
        """Booking ids by (lower-case) chain booking id, for the bookings that exist."""
        return await self.bookings.resolve(chain_booking_ids)

    async def deliver_events(self, events: Sequence[DecodedEvent]) -> None:
        """`deliver` for events read straight from the chain (the reconciler's repairs)."""
        await self.deliver([observed(e) for e in events])

    def _signal_call(
        self,
        booking: str | None,
        event: ObservedEvent,
        closed: list[tuple[str | None, ObservedEvent]],
    ) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            if booking is not None:
                outcome = await self._sink.deliver(booking, event.signal)
            else:
                outcome = await self._sink.orphan(event.signal)
            if outcome is SignalOutcome.WORKFLOW_CLOSED:
                closed.append((booking, event))
            self._metrics.events.labels(event.signal.kind.value, outcome.value).inc()
            if event.block_timestamp is not None and outcome is not SignalOutcome.DROPPED:
                self._metrics.signal_latency.observe(
                    max(0.0, self._clock() - event.block_timestamp)
                )

        return call

    async def revert(self, chain_id: int, events: Sequence[StoredEvent]) -> list[tuple[str, int]]:
        """Tell workflows their events were orphaned, newest first within a booking.

        Returns the events whose booking workflow had closed: nobody heard those reverts.
        """
        if not events:
            return []
        unresolved = [e.chain_booking_id for e in events if not e.booking_id and e.chain_booking_id]
        bookings = await self.bookings.resolve(unresolved)
        unheard: list[tuple[str, int]] = []
        groups: dict[str, list[Callable[[], Awaitable[None]]]] = {}
        for event in sorted(events, key=lambda e: (e.block_number, e.log_index), reverse=True):
            cbid = (event.chain_booking_id or "").lower()
            booking = event.booking_id or bookings.get(cbid)
            signal = signal_from_row(
                kind=event.event_type,
                identity=EventIdentity(
                    chain_id=chain_id,
                    tx_hash=event.tx_hash,
                    log_index=event.log_index,
                    block_number=event.block_number,
                    block_hash=event.block_hash,
                ),
                chain_booking_id=cbid,
                payload=event.payload,
            )
            groups.setdefault(booking or f"orphan:{cbid}", []).append(
                self._revert_call(booking, signal, unheard)
            )
        await self._run_groups(groups.values())
        return unheard

    def _revert_call(
        self, booking: str | None, signal: ChainEventSignal, unheard: list[tuple[str, int]]
    ) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            outcome = await self._sink.revert(booking, signal)
            if (
                booking is not None
                and outcome is SignalOutcome.WORKFLOW_CLOSED
                and signal.kind in _ORPHAN_KINDS
            ):
                # A closed booking's late payment is refunded by the orphan workflow: tell it.
                outcome = await self._sink.revert(None, signal)
                if outcome is SignalOutcome.DROPPED:
                    outcome = SignalOutcome.WORKFLOW_CLOSED
            if booking is not None and outcome is SignalOutcome.WORKFLOW_CLOSED:
                unheard.append((signal.identity.tx_hash, signal.identity.log_index))
            self._metrics.events.labels(signal.kind.value, f"reverted_{outcome.value}").inc()
            log.warning(
                "listener_event_reverted",
                event_key=signal.key,
                event_type=signal.kind.value,
                booking_id=booking,
                block_number=signal.identity.block_number,
                outcome=outcome.value,
            )

        return call

    async def _run_groups(self, groups: Iterable[list[Callable[[], Awaitable[None]]]]) -> None:
        async def run(calls: list[Callable[[], Awaitable[None]]]) -> None:
            async with self._limit:
                for call in calls:
                    await call()

        async with asyncio.TaskGroup() as tasks:
            for calls in groups:
                tasks.create_task(run(calls))
