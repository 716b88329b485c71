"""Which open bookings the chaos checks call stuck (bench/chaos/due.py).

The full run (seed 535074902) flagged seven bookings "still PAID" whose flows a fault had cut
short: paid for appointments an hour away, their workflows waiting on the release timer, chain
and Postgres agreeing. Stuck means a deadline is behind the booking, not that its flow ended.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from temporalio.client import WorkflowExecutionStatus

from bench.chaos.checks import _not_running
from bench.chaos.due import GRACE, due, waiting
from workflows import booking_workflow_id

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_paid_booking_before_its_release_is_waiting_not_stuck() -> None:
    assert not due("PAID", NOW - HOUR, NOW + HOUR, NOW)


def test_a_paid_booking_past_its_release_and_the_grace_is_stuck() -> None:
    assert due("PAID", NOW - HOUR, NOW - GRACE, NOW)
    assert not due("PAID", NOW - HOUR, NOW - GRACE + timedelta(seconds=1), NOW)


def test_an_unpaid_booking_is_judged_by_its_payment_deadline() -> None:
    assert not due("PENDING_PAYMENT", NOW + timedelta(minutes=1), NOW + HOUR, NOW)
    assert due("PENDING_PAYMENT", NOW - GRACE, NOW + HOUR, NOW)


def test_only_a_booking_whose_flow_was_cut_short_waits() -> None:
    # A finished flow's completion or cancellation is on its way: that booking is busy (the
    # short run's check otherwise ran before a victim's completion landed).
    assert waiting(True, "PAID", NOW - HOUR, NOW + HOUR, NOW)
    assert not waiting(False, "PAID", NOW - HOUR, NOW + HOUR, NOW)
    assert not waiting(True, "PAID", NOW - HOUR, NOW - HOUR, NOW)


def test_an_open_booking_without_a_deadline_is_stuck() -> None:
    assert due("PAID", None, None, NOW)
    assert due("PENDING_CANCELLATION", NOW, None, NOW)


class _Described:
    def __init__(self, status: WorkflowExecutionStatus) -> None:
        self.status = status


class _Handle:
    def __init__(self, status: WorkflowExecutionStatus) -> None:
        self._status = status

    async def describe(self) -> _Described:
        return _Described(self._status)


class _Temporal:
    """Answers `describe` with a status per workflow id (a unit test's stand-in)."""

    def __init__(self, statuses: dict[str, WorkflowExecutionStatus]) -> None:
        self.statuses = statuses

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self.statuses[workflow_id])


async def test_a_waiting_booking_needs_a_running_workflow() -> None:
    waiting = [SimpleNamespace(id="a", status="PAID"), SimpleNamespace(id="b", status="PAID")]
    temporal = _Temporal(
        {
            booking_workflow_id("a"): WorkflowExecutionStatus.RUNNING,
            booking_workflow_id("b"): WorkflowExecutionStatus.TERMINATED,
        }
    )
    problems = await _not_running(temporal, waiting)  # type: ignore[arg-type]
    assert len(problems) == 1
    assert problems[0].startswith("booking b still PAID")
    assert await _not_running(None, waiting[:1]) != []  # unchecked is not passed
