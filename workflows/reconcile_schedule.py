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


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the current settings (idempotent)."""
    schedule = reconcile_schedule(settings)
    try:
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
        log.info("reconcile_schedule_created", every_seconds=settings.reconcile_interval_seconds)
        return
    except ScheduleAlreadyRunningError:
        pass

    def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(RECONCILE_SCHEDULE_ID).update(update)
    log.info("reconcile_schedule_updated", every_seconds=settings.reconcile_interval_seconds)
