"""Payments seen before they are confirmed: forwarded at once, updated, withdrawn by reorgs.

For the customer's eyes only: the workflow shows "payment seen, n of N confirmations" and
keeps the status; only the confirmed scan delivers `payment_confirmed`. So nothing here is
stored or checkpointed, and a failure here never holds up confirmed delivery (it is logged
and the next head tries again).

Each cycle reads the payment logs of the unconfirmed blocks (head - N, head]: one
eth_getLogs per head, whatever the number of bookings. A log gets a `payment_seen` signal
when first seen and whenever its confirmations grew. A sighting whose log is gone from those
blocks, or sits in a block with another hash, gets a removal (anvil_reorg sends no `removed`
logs, so hashes decide). Once the confirmed scan passes its block, the sighting either came
back as a confirmed event (PAID follows; nothing to do) or did not (a removal).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import structlog

from chain.client import ChainClient
from chain.errors import EventDecodeError
from chain.events import BOOKING_CREATED_AND_PAID_TOPIC
from chain.hexutil import address
from listener.config import ListenerConfig
from listener.metrics import ListenerMetrics
from listener.observed import observe
from listener.sink import SignalOutcome
from workflows.types import ChainEventKind, ChainEventSignal, PaymentSighting

log = structlog.get_logger(__name__)

METRIC_KIND = "payment_seen"

Resolver = Callable[[Iterable[str]], Awaitable[dict[str, str]]]


class SightingSink(Protocol):
    """Where sightings go (the Temporal sink signals `payment_seen`)."""

    async def sighting(self, booking_id: str, sighting: PaymentSighting) -> SignalOutcome:
        """Tell the booking's workflow of an unconfirmed payment, or of its removal."""
        ...


@dataclass(frozen=True)
class _Live:
    booking_id: str
    sent: PaymentSighting

    @property
    def block_hash(self) -> str:
        return self.sent.event.identity.block_hash


class SightingForwarder:
    """Remembers what it told workflows about unconfirmed payments, to update or withdraw it."""

    def __init__(
        self,
        client: ChainClient,
        config: ListenerConfig,
        sink: SightingSink,
        resolve: Resolver,
        metrics: ListenerMetrics,
    ) -> None:
        self._client = client
        self._config = config
        self._sink = sink
        self._resolve = resolve
        self._metrics = metrics
        self._live: dict[str, _Live] = {}
        self._unknown: dict[str, int] = {}  # event key -> block, logged once each
        self._limit = asyncio.Semaphore(config.signal_concurrency)

    def reset(self) -> None:
        """Forget everything (a new leadership term: another replica may have moved on)."""
        self._live.clear()
        self._unknown.clear()

    @property
    def live(self) -> dict[str, PaymentSighting]:
        """The sightings last sent, by event key (not yet confirmed or withdrawn)."""
        return {key: live.sent for key, live in self._live.items()}

    async def scan(self, head: int, *, checkpoint: int) -> None:
        """Forward payments in blocks above head - N; withdraw those no longer there.

        Only blocks above the `checkpoint` count: below it every event is already delivered
        (a listener restarted with more confirmations starts with its checkpoint near the head).
        """
        depth = self._config.confirmations
        if depth == 0:
            return  # every event is confirmed as soon as it is seen
        start = max(head - depth + 1, checkpoint + 1, self._config.start_block)
        if start > head:
            return
        present = await self._payments(start, head)
        for key, live in list(self._live.items()):
            identity = live.sent.event.identity
            if identity.block_number < start:
                continue  # the confirmed scan settles it
            now = present.get(key)
            if now is None or now.identity.block_hash != identity.block_hash:
                await self._withdraw(key, live)
        self._unknown = {k: b for k, b in self._unknown.items() if b >= start}
        bookings = await self._resolve(e.chain_booking_id for e in present.values())
        news: list[_Live] = []
        for key, event in present.items():
            confirmations = head - event.identity.block_number
            shown = self._live.get(key)
            if shown is not None and shown.sent.confirmations >= confirmations:
                continue
            booking = bookings.get(event.chain_booking_id.lower())
            if booking is None:
                self._unknown_booking(event)
                continue
            news.append(_Live(booking, PaymentSighting(event=event, confirmations=confirmations)))
        await asyncio.gather(*(self._show(live) for live in news))

    async def _show(self, live: _Live) -> None:
        async with self._limit:  # a block full of payments: its signals go out together
            if await self._send(live.booking_id, live.sent):
                self._live[live.sent.event.key] = live

    async def confirmed(self, end: int, delivered: Iterable[ChainEventSignal]) -> None:
        """The confirmed scan delivered blocks up to `end`: settle the sightings there."""
        arrived = {(e.key, e.identity.block_hash) for e in delivered}
        for key, live in list(self._live.items()):
            if live.sent.event.identity.block_number > end:
                continue
            if (key, live.block_hash) in arrived:
                self._live.pop(key)  # payment_confirmed carries it from here
            else:
                await self._withdraw(key, live)

    async def _payments(self, start: int, end: int) -> dict[str, ChainEventSignal]:
        raw = await self._client.get_logs(
            from_block=start,
            to_block=end,
            address=self._config.contract_address,
            topics=[[BOOKING_CREATED_AND_PAID_TOPIC]],
        )
        found: dict[str, ChainEventSignal] = {}
        for entry in raw:
            if entry.get("removed") or address(entry["address"]) != self._config.contract_address:
                continue
            try:
                event = observe(entry, self._config.chain_id).signal
            except EventDecodeError:
                continue  # the confirmed scan logs and counts it
            if event.kind is ChainEventKind.PAYMENT:
                found[event.key] = event
        return found

    async def _withdraw(self, key: str, live: _Live) -> None:
        removal = dataclasses.replace(live.sent, removed=True)
        if await self._send(live.booking_id, removal):
            self._live.pop(key, None)
            log.info(
                "listener_sighting_withdrawn",
                booking_id=live.booking_id,
                event_key=key,
                block_number=live.sent.event.identity.block_number,
            )

    async def _send(self, booking_id: str, sighting: PaymentSighting) -> bool:
        """Signal; False (and tried again next head) when Temporal could not be reached."""
        outcome_prefix = "removed_" if sighting.removed else ""
        try:
            outcome = await self._sink.sighting(booking_id, sighting)
        except Exception as exc:  # best effort: never stall confirmed delivery for a sighting
            self._metrics.events.labels(METRIC_KIND, f"{outcome_prefix}failed").inc()
            log.warning(
                "listener_sighting_failed",
                booking_id=booking_id,
                event_key=sighting.event.key,
                error_type=type(exc).__name__,
                error=str(exc),
            )
            return False
        self._metrics.events.labels(METRIC_KIND, f"{outcome_prefix}{outcome.value}").inc()
        return True

    def _unknown_booking(self, event: ChainEventSignal) -> None:
        if event.key in self._unknown:
            return
        self._unknown[event.key] = event.identity.block_number
        self._metrics.events.labels(METRIC_KIND, "unknown_booking").inc()
        # The confirmed scan starts the orphan refund; until then there is nobody to tell.
        log.info(
            "listener_sighting_ignored",
            reason="no booking has this chain booking id",
            chain_booking_id=event.chain_booking_id,
            event_key=event.key,
        )
