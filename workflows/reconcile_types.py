"""Inputs, outputs and names of the reconcile workflow, shared with the CLI, API and chaos tooling.

Money is integer USDC base units. Every type is a frozen keyword-only dataclass so fields can be
added compatibly (defaults on new fields) without breaking histories or older clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

RECONCILE_WORKFLOW_NAME = "reconcile"
RECONCILE_SCHEDULE_ID = "bookme-reconcile"
PROGRESS_QUERY = "progress"
# Activity the booking workflow's `resync` calls (a test fake registers the same name).
RESYNC_BOOKING = "resync_booking"


def manual_reconcile_workflow_id(run_uuid: str) -> str:
    """Workflow id of an on-demand run (API or CLI)."""
    return f"reconcile-manual-{run_uuid}"


class DivergenceKind(StrEnum):
    """What a reconcile run can find; the keys of ``ReconcileReport.counts``."""

    # The chain says paid/completed/cancelled but the workflow never heard it.
    MISSING_PAYMENT = "missing_payment"
    MISSING_COMPLETION = "missing_completion"
    MISSING_CANCELLATION = "missing_cancellation"
    # The Postgres row disagrees with the workflow's own view (edited behind its back).
    DB_DRIFT = "db_drift"
    # A contract log with no `blockchain_events` row (listener bug, lost event, bad checkpoint).
    EVENT_GAP = "event_gap"
    # The chain state contradicts the workflow in a way no signal can repair (reported only).
    CHAIN_CONFLICT = "chain_conflict"
    # No workflow for a booking row (or it could not be queried).
    WORKFLOW_MISSING = "workflow_missing"
    # A blocked recipient's leg sits in the contract as an owed balance.
    OWED_BALANCE = "owed_balance"
    # Past a deadline (payment, auto-complete, cancellation expiry) and still non-terminal.
    STUCK = "stuck"


class ReconcileAction(StrEnum):
    """What the reconciler did about a finding."""

    SIGNALLED = "signalled"  # event stored in blockchain_events and signalled to the workflow
    RESYNCED = "resynced"  # booking workflow `resync` update re-wrote its view to Postgres
    REPORTED = "reported"  # nothing safe to do automatically; an operator decides


class InvariantName(StrEnum):
    """The money invariants of issue #7 (keys of ``ReconcileReport.invariants``)."""

    ESCROW_BALANCE = "escrow_balance"
    SETTLEMENT_TOTALS = "settlement_totals"
    EVENTS_SETTLED = "events_settled"


@dataclass(frozen=True, kw_only=True)
class ReconcileInput:
    full: bool = False  # scan every booking, not only non-terminal and recently touched ones
    page_size: int = 200
    reason: str = "schedule"
    # Carried across continue-as-new; callers leave these at their defaults.
    carry: ReconcileCarry | None = None


@dataclass(frozen=True, kw_only=True)
class ReconcileProgress:
    scanned: int
    total: int
    phase: str


@dataclass(frozen=True, kw_only=True)
class ReconcileFinding:
    kind: DivergenceKind
    action: ReconcileAction
    detail: str
    booking_id: str | None = None
    tx_hash: str | None = None
    log_index: int | None = None


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
    counts: dict[str, int]
    invariants: dict[str, int]
    stuck: list[str]
    findings: list[ReconcileFinding]
    scanned: int = 0
    from_block: int | None = None
    to_block: int | None = None
    invariant_details: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ReconcileCarry:
    """State handed to the next run after continue-as-new (the partial report and the cursor)."""

    window: ReconcileWindow
    after_booking_id: str | None
    scanned: int
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[ReconcileFinding] = field(default_factory=list)
    repaired_chain_ids: list[str] = field(default_factory=list)


# --- reconcile activities ----------------------------------------------------------------------

RECONCILE_BEGIN = "reconcile_begin"
RECONCILE_EVENTS = "reconcile_events"
RECONCILE_BOOKINGS_PAGE = "reconcile_bookings_page"
RECONCILE_WORKFLOWS = "reconcile_workflows"
RECONCILE_FINISH = "reconcile_finish"


@dataclass(frozen=True, kw_only=True)
class ReconcileWindow:
    """What one run covers: bookings touched since ``since`` (all if None) and a block range."""

    run_id: str
    started_at: datetime
    since: datetime | None
    total: int
    from_block: int
    to_block: int


@dataclass(frozen=True, kw_only=True)
class ReconcileBeginRequest:
    run_id: str
    full: bool


@dataclass(frozen=True, kw_only=True)
class EventGapRequest:
    run_id: str
    from_block: int
    to_block: int


@dataclass(frozen=True, kw_only=True)
class BookingPageRequest:
    run_id: str
    after_id: str | None
    page_size: int
    since: datetime | None
    # Bookings the event gap phase already signalled (counted there, not again).
    repaired_chain_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class PhaseResult:
    findings: list[ReconcileFinding]
    scanned: int
    last_id: str | None = None  # pages: where the next page starts; None when done
    repaired_chain_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class FinishRequest:
    run_id: str
    counts: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class FinishResult:
    findings: list[ReconcileFinding]
    invariants: dict[str, int]
    invariant_details: dict[str, list[str]]
    stuck: list[str]
