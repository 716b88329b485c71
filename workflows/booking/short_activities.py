"""Short activities (a Postgres write, a signature, a chain read) run as local activities.

A regular activity costs its booking six history events (scheduled, started, completed and the
workflow task that resumes it) and two round trips through the server; a local activity runs in
the worker inside the workflow task that asked for it and leaves one marker. Long or
heartbeating work (sending an operator transaction and waiting for it to be mined) stays a
regular activity, so another worker takes it over if this one dies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.booking import versions


async def execute(
    activity: str,
    arg: Any,
    *,
    patch: str,
    result_type: type | None,
    start_to_close: timedelta,
    retry: RetryPolicy,
) -> Any:
    """Run ``activity`` locally once ``patch`` applies (histories from before it scheduled a
    regular activity there, and replay the same way). A local activity's failure may arrive as
    the ``ApplicationError`` itself rather than an ``ActivityError``: a caller that handles the
    failure catches both."""
    run = workflow.execute_local_activity if versions.applies(patch) else workflow.execute_activity
    return await run(
        activity,
        arg,
        start_to_close_timeout=start_to_close,
        retry_policy=retry,
        result_type=result_type,
    )
