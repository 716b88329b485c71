"""Temporal activities: Postgres writes, chain reads, signing and operator transactions.

Each activity is a method of a class built with its dependencies in ``worker.py``;
``build_activities`` lists what the worker registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.booking_store import BookingStore
from activities.chain import ChainActivities
from activities.chain_events import signal_from_event
from activities.signer import Signer


def build_activities(
    *, store: BookingStore, signer: Signer, chain: ChainActivities
) -> list[Callable[..., Any]]:
    """Every activity the booking and orphan workflows call, bound to its dependencies."""
    return [
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
    "Signer",
    "build_activities",
    "signal_from_event",
]
