"""``bookme reconcile``: start a reconcile run now, follow its progress, print its report."""

from __future__ import annotations

import asyncio
import uuid
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from bookme.ops.deps import connect_temporal, history_url
from bookme.ops.errors import OpsError
from bookme.settings import Settings
from workflows.reconcile_types import (
    PROGRESS_QUERY,
    RECONCILE_WORKFLOW_NAME,
    ReconcileInput,
    ReconcileProgress,
    ReconcileReport,
    manual_reconcile_workflow_id,
)

POLL_SECONDS = 0.5


async def _progress(handle: WorkflowHandle[Any, ReconcileReport]) -> ReconcileProgress | None:
    try:
        progress: ReconcileProgress = await handle.query(
            PROGRESS_QUERY, result_type=ReconcileProgress
        )
    except (RPCError, WorkflowQueryFailedError):
        return None  # not started by a worker yet, or between runs of a continue-as-new
    return progress


async def _follow(
    handle: WorkflowHandle[Any, ReconcileReport], console: Console
) -> ReconcileReport:
    result = asyncio.ensure_future(handle.result())
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task("waiting for a worker", total=None)
        while not result.done():
            seen = await _progress(handle)
            if seen is not None:
                bar.update(
                    task, description=seen.phase, completed=seen.scanned, total=seen.total or None
                )
            await asyncio.wait({result}, timeout=POLL_SECONDS)
    try:
        return result.result()
    except WorkflowFailureError as exc:
        raise OpsError(f"reconcile run {handle.id} failed: {exc.cause or exc}") from None


def render_report(report: ReconcileReport, console: Console) -> None:
    counts = Table(title="divergences found")
    counts.add_column("kind")
    counts.add_column("count", justify="right")
    for kind, count in sorted(report.counts.items()):
        counts.add_row(kind, str(count), style="bold red" if count else None)
    console.print(counts)
    invariants = Table(title="money invariants (0 = holds)")
    invariants.add_column("invariant")
    invariants.add_column("value", justify="right")
    invariants.add_column("detail")
    for name, value in sorted(report.invariants.items()):
        detail = "; ".join(report.invariant_details.get(name, []))
        invariants.add_row(name, str(value), detail, style="bold red" if value else None)
    console.print(invariants)
    if report.stuck:
        console.print(
            f"[bold red]stuck bookings ({len(report.stuck)}):[/] " + ", ".join(report.stuck)
        )
    for finding in report.findings:
        console.print(
            f"- {finding.kind.value} [{finding.action.value}] booking={finding.booking_id or '-'} "
            f"{finding.detail}"
        )
    console.print(
        f"scanned {report.scanned} booking(s); blocks {report.from_block}..{report.to_block}"
    )


async def reconcile(settings: Settings, *, full: bool, wait: bool, out: IO[str]) -> int:
    """Start ``reconcile-manual-<uuid>``; with ``wait``, follow it and print the report."""
    console = Console(file=out, width=160, highlight=False)
    client = await connect_temporal(settings)
    workflow_id = manual_reconcile_workflow_id(str(uuid.uuid4()))
    handle: WorkflowHandle[Any, ReconcileReport] = await client.start_workflow(
        RECONCILE_WORKFLOW_NAME,
        ReconcileInput(full=full, reason="cli"),
        id=workflow_id,
        task_queue=settings.task_queue,
        result_type=ReconcileReport,
    )
    console.print(f"started {workflow_id}: {history_url(settings, workflow_id)}")
    if not wait:
        return 0
    report = await _follow(handle, console)
    render_report(report, console)
    return 1 if any(report.invariants.values()) else 0
