"""The demo's records: each booking (what it should end as, what happened) and each party."""

from __future__ import annotations

from dataclasses import dataclass, field

# The API statuses after which a booking no longer changes.
FINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(kw_only=True)
class Run:
    """One booking of the demo and what happened to it."""

    key: str
    title: str
    expected: str
    amount: int
    booking_id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    history: list[str] = field(default_factory=list)
    txs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == self.expected

    def moved_to(self, status: str) -> None:
        """Record a new status (the table's path shows every one)."""
        self.status = status
        self.history.append(status)


@dataclass(frozen=True, kw_only=True)
class Party:
    """A wallet whose USDC balance the demo checks."""

    label: str
    address: str
