"""Which column of a booking's row holds the transaction of each kind of escrow event.

One rule, two readers: the listener asks it in SQL (is an event re-delivered after its workflow
closed one the booking already holds?) and the orphan-money rule asks it in Python (does the row
hold this payment, or this release?). Both are generated from the mapping below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.types import ChainEventKind

HELD_TX_COLUMN: Mapping[str, str] = {
    ChainEventKind.PAYMENT.value: "blockchain_tx_hash",
    ChainEventKind.COMPLETION.value: "completion_tx_hash",
    # A cancellation's split and an operator's full refund both land here.
    ChainEventKind.CANCELLATION.value: "cancellation_tx_hash",
}


def held_txs(row: Any) -> dict[str, str | None]:
    """Event kind -> the tx hash ``row`` (anything with the bookings columns as attributes)
    holds for it, lower-case, None when unset."""
    return {
        kind: (str(value).lower() if (value := getattr(row, column)) else None)
        for kind, column in HELD_TX_COLUMN.items()
    }


def held_tx_sql(kind_param: str, alias: str) -> str:
    """A SQL expression: the column of bookings row ``alias`` holding the tx of the event kind
    bound to ``:kind_param`` (NULL for any other kind)."""
    whens = " ".join(
        f"WHEN '{kind}' THEN {alias}.{column}" for kind, column in HELD_TX_COLUMN.items()
    )
    return f"CASE :{kind_param} {whens} END"
