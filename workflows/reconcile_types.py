"""Inputs, outputs and names of the reconcile workflow, shared with the CLI, API and chaos tooling.

Money is integer USDC base units. Every type is a frozen keyword-only dataclass so fields can be
added compatibly (defaults on new fields) without breaking histories or older clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

RECONCILE_WORKFLOW_NAME = "reconcile"
RECONCILE_SCHEDULE_ID = "bookme-reconcile"
PROGRESS_QUERY = "progress"
# Operator updates on the booking workflow (names the CLI calls by string).
RESYNC_UPDATE = "resync"
REDRIVE_UPDATE = "redrive"


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


@dataclass(frozen=True, kw_only=True)
class ReconcileCarry:
    """State handed to the next run after continue-as-new (the partial report and the cursor)."""

    run_started_at: str
    after_booking_id: str | None
    total: int
    scanned: int
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[ReconcileFinding] = field(default_factory=list)
    from_block: int | None = None
    to_block: int | None = None
