"""What the reconciler needs from the listener: its store-then-signal delivery, as an interface.

Defined here, on the reconciler's side, so ``activities`` never imports ``listener``; ``worker.py``
injects the listener's ``Deliverer``, which has both methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from chain.events import DecodedEvent


class EventDelivery(Protocol):
    """Store each event in `blockchain_events`, then signal its booking's (or orphan) workflow."""

    async def resolve_bookings(self, chain_booking_ids: Iterable[str]) -> dict[str, str]:
        """Booking ids by lower-case chain booking id, for the bookings that exist."""
        ...

    async def deliver_events(self, events: Sequence[DecodedEvent]) -> None:
        """Store then signal, as the listener would have; raises if a signal failed."""
        ...
