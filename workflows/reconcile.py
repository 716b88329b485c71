"""``ReconcileWorkflow``: chain vs Postgres vs booking workflows, money invariants, stuck bookings.

Phases: ``events`` (contract logs of the block range vs ``blockchain_events``), ``bookings``
(keyset pages of bookings in scope: chain view, row and workflow ``status`` compared),
``workflows`` (running booking workflows whose row says they are over), ``invariants``
(money invariants and the stuck-booking detector). Every repair goes through the booking
workflow (see ``activities/reconcile.py``). Pages carry their findings back, so the run
continues as new (carrying the partial report) when Temporal suggests it or the history grows.
"""

from __future__ import annotations

from collections import Counter

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import constants as c
    from workflows.reconcile_types import (
        PROGRESS_QUERY,
        RECONCILE_BEGIN,
        RECONCILE_BOOKINGS_PAGE,
        RECONCILE_EVENTS,
        RECONCILE_FINISH,
        RECONCILE_WORKFLOW_NAME,
        RECONCILE_WORKFLOWS,
        BookingPageRequest,
        EventGapRequest,
        FinishRequest,
        FinishResult,
        PhaseResult,
        ReconcileBeginRequest,
        ReconcileCarry,
        ReconcileFinding,
        ReconcileInput,
        ReconcileProgress,
        ReconcileReport,
        ReconcileWindow,
    )

# A page costs ~6 events; continue as new well before Temporal's limits (or when it suggests).
MAX_HISTORY_EVENTS = 2_000
# The report keeps every count but only this many finding details (the audit rows keep all).
MAX_REPORTED_FINDINGS = 500


@workflow.defn(name=RECONCILE_WORKFLOW_NAME)
class ReconcileWorkflow:
    @workflow.init
    def __init__(self, request: ReconcileInput) -> None:
        carry = request.carry
        self._progress = ReconcileProgress(
            scanned=carry.scanned if carry else 0,
            total=carry.window.total if carry else 0,
            phase="bookings" if carry else "starting",
        )

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> ReconcileProgress:
        return self._progress

    @workflow.run
    async def run(self, request: ReconcileInput) -> ReconcileReport:
        carry = await self._scan_bookings(request, request.carry or await self._start(request))
        self._set_progress(carry, "workflows")
        running = await self._scan(
            RECONCILE_WORKFLOWS,
            EventGapRequest(
                run_id=carry.window.run_id,
                from_block=carry.window.from_block,
                to_block=carry.window.to_block,
            ),
        )
        carry = _merge(carry, running)
        self._set_progress(carry, "invariants")
        report = await self._finish(carry)
        self._set_progress(carry, "done")
        workflow.set_current_details(_summary(request, report))
        return report

    async def _scan_bookings(
        self, request: ReconcileInput, carry: ReconcileCarry
    ) -> ReconcileCarry:
        """Page through the bookings; continue as new when the history grows long."""
        while True:
            page: PhaseResult = await self._scan(
                RECONCILE_BOOKINGS_PAGE,
                BookingPageRequest(
                    run_id=carry.window.run_id,
                    after_id=carry.after_booking_id,
                    page_size=request.page_size,
                    since=carry.window.since,
                    repaired_chain_ids=carry.repaired_chain_ids,
                ),
            )
            carry = _merge(carry, page, after=page.last_id, scanned=page.scanned)
            self._set_progress(carry, "bookings")
            if page.last_id is None:
                return carry
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > MAX_HISTORY_EVENTS
            ):
                workflow.continue_as_new(
                    ReconcileInput(
                        full=request.full,
                        page_size=request.page_size,
                        reason=request.reason,
                        carry=carry,
                    )
                )

    async def _finish(self, carry: ReconcileCarry) -> ReconcileReport:
        """The invariants and stuck checks, then the run's report."""
        finish: FinishResult = await workflow.execute_activity(
            RECONCILE_FINISH,
            FinishRequest(run_id=carry.window.run_id, counts=dict(carry.counts)),
            result_type=FinishResult,
            start_to_close_timeout=c.SCAN_TIMEOUT,
            retry_policy=c.SCAN_RETRY,
        )
        carry = _merge(carry, PhaseResult(findings=finish.findings, scanned=0))
        return ReconcileReport(
            counts=carry.counts,
            invariants=finish.invariants,
            stuck=finish.stuck,
            findings=carry.findings,
            scanned=carry.scanned,
            from_block=carry.window.from_block,
            to_block=carry.window.to_block,
            invariant_details=finish.invariant_details,
        )

    async def _start(self, request: ReconcileInput) -> ReconcileCarry:
        info = workflow.info()
        window: ReconcileWindow = await workflow.execute_activity(
            RECONCILE_BEGIN,
            ReconcileBeginRequest(
                run_id=f"{info.workflow_id}/{info.first_execution_run_id}", full=request.full
            ),
            result_type=ReconcileWindow,
            start_to_close_timeout=c.SCAN_TIMEOUT,
            retry_policy=c.SCAN_RETRY,
        )
        self._progress = ReconcileProgress(scanned=0, total=window.total, phase="events")
        workflow.set_current_details(
            f"reconcile ({request.reason}): {window.total} bookings in scope,"
            f" blocks {window.from_block}..{window.to_block}"
        )
        gap = await self._scan(
            RECONCILE_EVENTS,
            EventGapRequest(
                run_id=window.run_id, from_block=window.from_block, to_block=window.to_block
            ),
        )
        carry = ReconcileCarry(window=window, after_booking_id=None, scanned=0)
        return _merge(carry, gap, repaired=gap.repaired_chain_ids)

    async def _scan(self, name: str, request: object) -> PhaseResult:
        result: PhaseResult = await workflow.execute_activity(
            name,
            request,
            result_type=PhaseResult,
            start_to_close_timeout=c.SCAN_TIMEOUT,
            heartbeat_timeout=c.SCAN_HEARTBEAT,
            retry_policy=c.SCAN_RETRY,
        )
        return result

    def _set_progress(self, carry: ReconcileCarry, phase: str) -> None:
        total = max(carry.window.total, carry.scanned)
        self._progress = ReconcileProgress(scanned=carry.scanned, total=total, phase=phase)


def _merge(
    carry: ReconcileCarry,
    result: PhaseResult,
    *,
    after: str | None = None,
    scanned: int = 0,
    repaired: list[str] | None = None,
) -> ReconcileCarry:
    counts = Counter(carry.counts)
    counts.update(f.kind.value for f in result.findings)
    room = MAX_REPORTED_FINDINGS - len(carry.findings)
    findings: list[ReconcileFinding] = carry.findings + result.findings[: max(0, room)]
    return ReconcileCarry(
        window=carry.window,
        after_booking_id=after if after is not None else carry.after_booking_id,
        scanned=carry.scanned + scanned,
        counts=dict(counts),
        findings=findings,
        repaired_chain_ids=repaired if repaired is not None else carry.repaired_chain_ids,
    )


def _summary(request: ReconcileInput, report: ReconcileReport) -> str:
    """Markdown shown as the workflow's current details in the Temporal UI."""
    broken = {name: n for name, n in report.invariants.items() if n}
    lines = [
        f"**reconcile** ({request.reason}{', full' if request.full else ''}):"
        f" {report.scanned} bookings, blocks {report.from_block}..{report.to_block}",
        "",
        "divergences: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()) if v) or "none"),
        "invariants: "
        + ("all hold" if not broken else ", ".join(f"{k} BROKEN ({v})" for k, v in broken.items())),
        f"stuck bookings: {len(report.stuck)}",
    ]
    return "\n".join(lines)
