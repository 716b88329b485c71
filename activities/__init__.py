"""Temporal activities: Postgres writes, chain reads, signing and operator transactions.

Each activity is a method of a class built with its dependencies in ``worker.py``;
``build_activities`` lists what the worker registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.booking_store import BookingStore
from activities.chain import ChainActivities
from activities.reconcile import ReconcileActivities, ReconcileConfig, ResyncStore
from activities.retention import RetentionActivities
from activities.signer import Signer
from activities.webhooks import WebhookDispatcher


def build_activities(
    *,
    store: BookingStore,
    signer: Signer,
    chain: ChainActivities,
    reconcile: ReconcileActivities | None = None,
    retention: RetentionActivities | None = None,
    webhooks: WebhookDispatcher | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the booking, orphan and reconcile workflows call, bound to dependencies.

    A `ResyncStore` as ``store`` adds the booking workflow's ``resync_booking``.
    """
    extra: list[Callable[..., Any]] = []
    if isinstance(store, ResyncStore):
        extra.append(store.resync_booking)
    if reconcile is not None:
        extra += reconcile.activities()
    if retention is not None:
        extra.append(retention.apply_retention)
    if webhooks is not None:
        extra.append(webhooks.dispatch_webhooks)
    return [
        *extra,
        store.record_booking,
        store.apply_transition,
        store.record_orphan,
        signer.sign_payment_authorization,
        signer.sign_cancellation_authorization,
        chain.observe_booking,
        chain.send_complete_service,
        chain.send_emergency_cancel,
    ]


__all__ = [
    "BookingStore",
    "ChainActivities",
    "ReconcileActivities",
    "ReconcileConfig",
    "ResyncStore",
    "RetentionActivities",
    "Signer",
    "WebhookDispatcher",
    "build_activities",
]
