"""The daily data-retention run: one activity that deletes rows past the retention policy.

Started by the Temporal Schedule ``bookme-retention`` (see ``bookme/schedules.py``);
the policy itself is documented in ``docs/runbook.md`` ("Data retention"). The periods travel in
the input, so a schedule updated at worker start applies new settings without a code change.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

from workflows import constants as c

RETENTION_WORKFLOW_NAME = "retention"
RETENTION_SCHEDULE_ID = "bookme-retention"
APPLY_RETENTION = "apply_retention"


@dataclass(frozen=True, kw_only=True)
class RetentionRequest:
    """The policy to apply (periods from Settings) and whether to only count."""

    events_days: int
    nonces_days: int
    rate_limit_hours: int
    # PROCESSED events this close to the listener checkpoint are re-read by every scheduled
    # reconcile run's gap check, so they stay whatever their age.
    event_lookback_blocks: int
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class RetentionResult:
    """Rows deleted (or, on a dry run, that would be) per table."""

    blockchain_events: int
    signature_nonces: int
    rate_limit_counters: int
    dry_run: bool = False


@workflow.defn(name=RETENTION_WORKFLOW_NAME)
class RetentionWorkflow:
    @workflow.run
    async def run(self, request: RetentionRequest) -> RetentionResult:
        result: RetentionResult = await workflow.execute_activity(
            APPLY_RETENTION,
            request,
            result_type=RetentionResult,
            start_to_close_timeout=c.RETENTION_ACTIVITY_TIMEOUT,
            heartbeat_timeout=c.RETENTION_HEARTBEAT_TIMEOUT,
            retry_policy=c.RETENTION_RETRY,
        )
        return result
