"""The Temporal Schedule ``bookme-retention``: the retention workflow once a day."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from bookme.settings import Settings
from workflows.reconcile_schedule import ensure_schedule
from workflows.retention import RETENTION_SCHEDULE_ID, RetentionRequest, RetentionWorkflow

log = structlog.get_logger(__name__)

RETENTION_EVERY = timedelta(days=1)
# Temporal appends the scheduled time to this id, one workflow per firing.
SCHEDULED_WORKFLOW_ID = "retention-scheduled"


def retention_request(settings: Settings, *, dry_run: bool = False) -> RetentionRequest:
    """The policy as configured."""
    return RetentionRequest(
        events_days=settings.retention_events_days,
        nonces_days=settings.retention_nonces_days,
        rate_limit_hours=settings.retention_rate_limit_hours,
        event_lookback_blocks=settings.reconcile_event_lookback_blocks,
        dry_run=dry_run,
    )


def retention_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            retention_request(settings),
            id=SCHEDULED_WORKFLOW_ID,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RETENTION_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the current settings (idempotent)."""
    created = await ensure_schedule(client, RETENTION_SCHEDULE_ID, retention_schedule(settings))
    log.info("retention_schedule_created" if created else "retention_schedule_updated")
