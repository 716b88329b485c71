"""Reconciliation: chain, Postgres and booking workflows compared, repaired through the workflow.

A check comes in three kinds:

- a *divergence* (`workflows.reconcile_types.DivergenceKind`): a booking's three views disagree.
  ``event_gaps`` (logs never stored), ``booking_checks`` (chain vs workflow vs row, with the
  agreement table in ``agreement``), ``running`` (running workflows whose row is terminal);
  repaired in ``repair`` (the workflow's ``resync``; ``resync_store`` writes a closed one's view);
- a *money invariant* (`InvariantName`): ``invariants``;
- a *deadline* passed by a booking still open: ``stuck``.

``reconciler.ReconcileActivities`` is the activity class the worker registers (one method per
phase); ``audit`` records findings, ``metrics`` exports them, ``logs`` reads escrow logs.
"""

from activities.reconcile.context import ReconcileConfig
from activities.reconcile.delivery import EventDelivery
from activities.reconcile.metrics import ReconcileMetrics
from activities.reconcile.reconciler import ReconcileActivities
from activities.reconcile.resync_store import ResyncStore

__all__ = [
    "EventDelivery",
    "ReconcileActivities",
    "ReconcileConfig",
    "ReconcileMetrics",
    "ResyncStore",
]
