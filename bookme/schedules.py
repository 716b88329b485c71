"""The Temporal Schedules the worker keeps: reconcile every ``reconcile_interval_seconds``,
retention once a day; and the one long-running webhook relay. Client-side code: the worker
creates them at start, the CLI reads the policy.
"""

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
from temporalio.common import WorkflowIDConflictPolicy

from bookme.settings import Settings
from workflows.reconcile_types import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_NAME, ReconcileInput
from workflows.retention import RETENTION_SCHEDULE_ID, RetentionRequest, RetentionWorkflow
from workflows.webhook_relay import WEBHOOK_RELAY_WORKFLOW_ID, RelayInput, WebhookRelayWorkflow

log = structlog.get_logger(__name__)

# Temporal appends the scheduled time to these ids, one workflow per firing.
RECONCILE_WORKFLOW_ID = "reconcile-scheduled"
RETENTION_WORKFLOW_ID = "retention-scheduled"
RETENTION_EVERY = timedelta(days=1)


def reconcile_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW_NAME,
            ReconcileInput(),
            id=RECONCILE_WORKFLOW_ID,
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
            id=RETENTION_WORKFLOW_ID,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RETENTION_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the current settings (idempotent)."""
    created = await ensure_schedule(client, RETENTION_SCHEDULE_ID, retention_schedule(settings))
    log.info("retention_schedule_created" if created else "retention_schedule_updated")


async def ensure_webhook_relay(
    client: Client, settings: Settings, *, workflow_id: str = WEBHOOK_RELAY_WORKFLOW_ID
) -> None:
    """Start the webhook relay unless it runs (every worker asks; one instance runs).

    A running relay keeps the input it started with until its next continue-as-new.
    """
    await client.start_workflow(
        WebhookRelayWorkflow.run,
        RelayInput(poll_interval_seconds=settings.webhook_poll_interval_seconds),
        id=workflow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    log.info("webhook_relay_running", workflow_id=workflow_id)
