"""Retention deletes exactly the rows past the policy; the daily schedule runs the same job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from temporalio.client import Client
from temporalio.worker import Worker

from activities import BookingStore
from activities.retention import RetentionActivities
from bookme.schedules import ensure_retention_schedule, retention_request
from bookme.settings import Settings
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from db.models import BlockchainEvent, Booking, ChainCursor, RateLimitCounter, SignatureNonce
from db.statuses import BlockchainEventStatus, BookingStatus, NonceKind
from tests.ops.conftest import run_cli
from tests.workflows.fakes import make_booking
from workflows.retention import RETENTION_SCHEDULE_ID, RetentionResult, RetentionWorkflow

ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHECKPOINT = 100_000
LOOKBACK = 1_000
DAY = timedelta(days=1)
E = BlockchainEventStatus


def _hash(n: int) -> str:
    return "0x" + f"{n:064x}"


async def _seed(sessions) -> dict[str, set[object]]:
    """Rows on both sides of every rule; returns what must survive, per table."""
    now = datetime.now(UTC)
    store = BookingStore(sessions, escrow_address=ESCROW)
    done, running = make_booking(), make_booking()
    for booking in (done, running):
        await store.record_booking(booking)
    old, fresh = now - 100 * DAY, now - 10 * DAY
    below, near = CHECKPOINT - LOOKBACK - 1, CHECKPOINT - 10
    events = {
        # name: (status, settled at, block) -- kept unless marked "gone"
        "gone_processed": (E.PROCESSED, old, below),
        "gone_reorged": (E.REORGED, old, near),
        "processed_recent": (E.PROCESSED, fresh, below),
        "processed_in_lookback": (E.PROCESSED, old, near),
        "received_old": (E.RECEIVED, old, below),
        "failed_old": (E.FAILED, old, below),
    }
    async with sessions.begin() as session:
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(done.booking_id))
            .values(status=BookingStatus.COMPLETED)
        )
        await session.execute(
            insert(ChainCursor).values(
                chain_id=31337,
                contract_address=ESCROW,
                last_block_number=CHECKPOINT,
                last_block_hash=_hash(1),
            )
        )
        for n, (name, (status, at, block)) in enumerate(events.items()):
            await session.execute(
                insert(BlockchainEvent).values(
                    chain_id=31337,
                    tx_hash=_hash(1000 + n),
                    log_index=0,
                    block_number=block,
                    block_hash=_hash(2000 + n),
                    contract_address=ESCROW,
                    event_type=name,
                    status=status,
                    received_at=at,
                    processed_at=None if status in (E.RECEIVED, E.FAILED) else at,
                )
            )
        nonces = {}
        for name, booking, expires in (
            ("gone_settled_old", done, old),
            ("settled_recent", done, fresh),
            ("running_old", running, old),
        ):
            nonces[name] = (
                await session.execute(
                    insert(SignatureNonce)
                    .values(
                        booking_id=uuid.UUID(booking.booking_id),
                        kind=NonceKind.CANCELLATION,
                        expires_at=expires,
                    )
                    .returning(SignatureNonce.nonce)
                )
            ).scalar_one()
        for key, window in (("gone", now - 2 * DAY), ("kept", now - timedelta(minutes=5))):
            await session.execute(
                insert(RateLimitCounter).values(key=key, window_start=window, count=3)
            )
    return {
        "events": {name for name in events if not name.startswith("gone")},
        "nonces": {v for k, v in nonces.items() if not k.startswith("gone")},
        "counters": {"kept"},
    }


async def _remaining(sessions) -> dict[str, set[object]]:
    async with sessions() as session:
        return {
            "events": set((await session.execute(select(BlockchainEvent.event_type))).scalars()),
            "nonces": set((await session.execute(select(SignatureNonce.nonce))).scalars()),
            "counters": set((await session.execute(select(RateLimitCounter.key))).scalars()),
        }


async def test_retention_deletes_exactly_what_the_policy_allows(database_url):
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=2)
    sessions = make_session_factory(engine)
    try:
        survivors = await _seed(sessions)
        settings = Settings(
            database_url=database_url,
            retention_events_days=30,
            retention_nonces_days=30,
            retention_rate_limit_hours=24,
            reconcile_event_lookback_blocks=LOOKBACK,
        )
        before = await _remaining(sessions)

        dry = await run_cli(settings, "retention", "--dry-run")
        assert dry.code == 0
        assert "would delete: 2 blockchain_events" in dry.out
        assert "1 signature_nonces" in dry.out
        assert "1 rate_limit_counters" in dry.out
        assert await _remaining(sessions) == before

        applied = await run_cli(settings, "retention")
        assert applied.code == 0
        assert "deleted: 2 blockchain_events" in applied.out
        assert await _remaining(sessions) == survivors
        again = await run_cli(settings, "retention")
        assert again.out.startswith("deleted: 0 blockchain_events")
        assert " 0 signature_nonces" in again.out
    finally:
        await engine.dispose()


async def test_schedule_is_idempotent_and_its_workflow_applies_the_policy(
    database_url, temporal_client: Client
):
    await upgrade_async(database_url)
    engine = make_engine(database_url, pool_size=2)
    sessions = make_session_factory(engine)
    task_queue = f"retention-{uuid.uuid4().hex[:10]}"
    settings = Settings(task_queue=task_queue, reconcile_event_lookback_blocks=LOOKBACK)
    try:
        survivors = await _seed(sessions)
        await ensure_retention_schedule(temporal_client, settings)
        await ensure_retention_schedule(temporal_client, settings)  # a second worker start
        described = await temporal_client.get_schedule_handle(RETENTION_SCHEDULE_ID).describe()
        assert described.schedule.spec.intervals[0].every == DAY

        async with Worker(
            temporal_client,
            task_queue=task_queue,
            workflows=[RetentionWorkflow],
            activities=[RetentionActivities(sessions).apply_retention],
        ):
            result = await temporal_client.execute_workflow(
                RetentionWorkflow.run,
                retention_request(settings),
                id=f"retention-test-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
        assert result == RetentionResult(
            blockchain_events=2, signature_nonces=1, rate_limit_counters=1
        )
        assert await _remaining(sessions) == survivors
    finally:
        await temporal_client.get_schedule_handle(RETENTION_SCHEDULE_ID).delete()
        await engine.dispose()
