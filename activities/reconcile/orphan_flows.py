"""Which escrow money is an orphan's: payments no booking refunds itself, and what refunds them.

A payment is an orphan's when no booking row has its chain booking id, or when its row closed
CANCELLED without holding it: the booking's workflow ended unpaid (it judged the authorization
dead while the chain still took the payment, issue #18) and the listener handed the payment to
the orphan refund. A missed payment of a live booking is not an orphan's (reconcile repairs it),
nor one a FAILED booking's workflow refunds and records itself. The release that follows an
orphan payment empties it from escrow; unless the row holds that release, it is the orphan's
refund, not the booking's settlement. The reconciler's money invariants and the chaos checks
both read the chain through this one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.events import BookingCreatedAndPaid, DecodedEvent
from db.held_tx import held_txs


@dataclass(frozen=True, kw_only=True)
class HeldTxs:
    """What a booking's row holds of the chain: tx hash by event kind (``db.held_tx``)."""

    booking_id: str
    cancelled: bool = False
    txs: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def of_row(cls, row: Any, *, booking_id: str, cancelled: bool) -> HeldTxs:
        """From anything with the bookings tx columns as attributes."""
        return cls(booking_id=booking_id, cancelled=cancelled, txs=held_txs(row))

    def holds(self, event: DecodedEvent) -> bool:
        held = self.txs.get(event.NAME)
        return (held or "").lower() == event.identity.tx_hash.lower()


@dataclass(frozen=True, kw_only=True)
class OrphanFlows:
    """Orphan payments still in escrow (by chain booking id), and every orphan event's key."""

    unrefunded: dict[str, int]
    keys: frozenset[tuple[str, int]]

    def __contains__(self, event: DecodedEvent) -> bool:
        return (event.identity.tx_hash.lower(), event.identity.log_index) in self.keys


def orphan_flows(events: Iterable[DecodedEvent], rows: Mapping[str, HeldTxs]) -> OrphanFlows:
    """Walk the escrow's events in chain order; ``rows`` by lower-case chain booking id."""
    unrefunded: dict[str, int] = {}
    keys: set[tuple[str, int]] = set()
    for event in events:
        cbid = event.booking_id.lower()
        row = rows.get(cbid)
        if isinstance(event, BookingCreatedAndPaid):
            if row is not None and (not row.cancelled or row.holds(event)):
                continue
            unrefunded[cbid] = event.amount
        elif unrefunded.pop(cbid, None) is None or (row is not None and row.holds(event)):
            continue  # the booking's own settlement, or a release the row recorded
        keys.add((event.identity.tx_hash.lower(), event.identity.log_index))
    return OrphanFlows(unrefunded=unrefunded, keys=frozenset(keys))
