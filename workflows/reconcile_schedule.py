"""The Temporal Schedule that runs ``ReconcileWorkflow`` every ``reconcile_interval_seconds``."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from bookme.settings import Settings
from workflows.reconcile_types import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_NAME, ReconcileInput

log = structlog.get_logger(__name__)

# Temporal appends the scheduled time to this id, one workflow per firing.
SCHEDULED_WORKFLOW_ID = "reconcile-scheduled"


def reconcile_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW_NAME,
            ReconcileInput(),
            id=SCHEDULED_WORKFLOW_ID,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(every=timedelta(seconds=settings.reconcile_interval_seconds))
            ]
        ),
        # A run still going when the next is due: skip the next, never pile them up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    """Create ``schedule_id``, or replace an existing one's definition; True if created."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return True
    except ScheduleAlreadyRunningError:
        pass

    def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(update)
    return False


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the current settings (idempotent)."""
    created = await ensure_schedule(client, RECONCILE_SCHEDULE_ID, reconcile_schedule(settings))
    log.info(
        "reconcile_schedule_created" if created else "reconcile_schedule_updated",
        every_seconds=settings.reconcile_interval_seconds,
    )
