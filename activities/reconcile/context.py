"""The reconciler's knobs and dependencies, shared by its phases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from activities.reconcile.delivery import EventDelivery
from activities.reconcile.metrics import ReconcileMetrics
from activities.reconcile.resync_store import ACTOR, ResyncStore
from bookme.settings import Settings
from chain.escrow import EscrowReader

__all__ = ["ACTOR", "Reconcile", "ReconcileConfig", "heartbeat"]


@dataclass(frozen=True, kw_only=True)
class ReconcileConfig:
    """The reconciler's knobs (from Settings)."""

    chain_id: int
    confirmations: int
    interval: timedelta
    lookback_blocks: int
    from_block: int
    max_block_range: int
    received_grace: timedelta
    stuck_grace: timedelta
    payment_deadline: timedelta
    auto_complete_delay: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ReconcileConfig:
        return cls(
            chain_id=settings.chain_id,
            confirmations=settings.confirmations,
            interval=timedelta(seconds=settings.reconcile_interval_seconds),
            lookback_blocks=settings.reconcile_event_lookback_blocks,
            from_block=settings.reconcile_from_block,
            max_block_range=settings.listener_max_block_range,
            received_grace=timedelta(seconds=settings.reconcile_received_grace_seconds),
            stuck_grace=timedelta(seconds=settings.reconcile_stuck_grace_seconds),
            payment_deadline=timedelta(seconds=settings.payment_deadline_seconds),
            auto_complete_delay=timedelta(seconds=settings.auto_complete_delay_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class Reconcile:
    """Everything a phase reads, compares and repairs through."""

    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    escrow: EscrowReader
    delivery: EventDelivery
    resync_store: ResyncStore
    metrics: ReconcileMetrics
    config: ReconcileConfig


def heartbeat(*details: object) -> None:
    """Heartbeat when running as an activity (phases are also called directly in tests)."""
    if activity.in_activity():
        activity.heartbeat(*details)
