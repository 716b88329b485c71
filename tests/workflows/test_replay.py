"""Recorded histories of every tested path replay against the current workflow code.

A change that alters the commands a recorded history expects fails here: put it behind
``workflow.patched`` instead. Record after an intended, patched change with
``BOOKME_RECORD_HISTORIES=1 pytest tests/workflows -m "not integration"`` and keep the older
recordings: the new ones go beside them as ``<test>.<patch>.json`` (``compact-history``: the
shape bookings start with since issue 17), so both shapes keep replaying.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows import WORKFLOWS
from workflows.sandbox import workflow_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_histories_for_the_main_paths():
    names = {path.stem for path in HISTORIES}
    for expected in (
        "test_pay_then_auto_complete_then_completed",
        "test_unpaid_booking_is_cancelled_at_the_payment_deadline",
        "test_poll_finds_a_payment_the_listener_missed_and_the_late_push_is_a_no_op",
        "test_unused_cancellation_authorization_expires_back_to_paid",
        "test_reorged_payment_rolls_back_and_the_reincluded_one_applies",
        "test_payment_with_wrong_amount_fails_the_booking_and_refunds",
    ):
        assert expected in names
        assert f"{expected}.compact-history" in names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
