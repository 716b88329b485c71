"""The webhook relay: one long-running workflow that keeps the outbox flowing to the marketplace.

Each round runs the ``dispatch_webhooks`` activity (it sends every due delivery, each booking's
events one at a time per endpoint, until nothing is due) and then sleeps ``poll_interval``.
Retries of a failed delivery are scheduled in Postgres (``next_attempt_at``), not as Temporal
activity retries: a delivery's schedule must survive replays by operators, endpoint changes and
per-booking ordering, which one row per delivery expresses and a retrying activity would hide.
Temporal keeps the relay itself alive: one instance (a fixed workflow id, started by every
worker with ``USE_EXISTING``), restarted on another worker when one dies, continued-as-new
before its history grows large.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

WEBHOOK_RELAY_WORKFLOW_NAME = "webhook-relay"
WEBHOOK_RELAY_WORKFLOW_ID = "webhook-relay"
DISPATCH_WEBHOOKS = "dispatch_webhooks"

# The activity dispatches for at most ``max_seconds`` (then the workflow sleeps and calls it
# again), heartbeating after every round of POSTs.
DISPATCH_HEARTBEAT_TIMEOUT = timedelta(minutes=2)
DISPATCH_MARGIN = timedelta(minutes=2)
DISPATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@dataclass(frozen=True, kw_only=True)
class RelayInput:
    poll_interval_seconds: float = 2.0
    dispatch_seconds: float = 60.0  # longest single dispatch activity
    rounds_before_continue: int = 500  # continue-as-new after this many rounds


@dataclass(frozen=True, kw_only=True)
class DispatchRequest:
    max_seconds: float = 60.0


@dataclass(frozen=True, kw_only=True)
class DispatchResult:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


@workflow.defn(name=WEBHOOK_RELAY_WORKFLOW_NAME)
class WebhookRelayWorkflow:
    def __init__(self) -> None:
        self._woken = False

    @workflow.signal(name="wake")
    def wake(self) -> None:
        """Dispatch now instead of at the end of the sleep (after a replay, say)."""
        self._woken = True

    @workflow.run
    async def run(self, relay: RelayInput) -> None:
        for _ in range(relay.rounds_before_continue):
            self._woken = False
            try:
                await workflow.execute_activity(
                    DISPATCH_WEBHOOKS,
                    DispatchRequest(max_seconds=relay.dispatch_seconds),
                    result_type=DispatchResult,
                    start_to_close_timeout=timedelta(seconds=relay.dispatch_seconds)
                    + DISPATCH_MARGIN,
                    heartbeat_timeout=DISPATCH_HEARTBEAT_TIMEOUT,
                    retry_policy=DISPATCH_RETRY,
                )
            except ActivityError as err:
                # Postgres down, say: nothing is lost (the rows wait), the next round tries again.
                workflow.logger.warning("webhook dispatch failed", extra={"error": str(err.cause)})
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._woken, timeout=timedelta(seconds=relay.poll_interval_seconds)
                )
        workflow.continue_as_new(relay)
