"""The booking workflow: a thin Temporal shell over pure state, guards, timers and event rules.

- ``workflow``: the ``@workflow.defn`` class (run loop, handlers, persistence, visibility);
- ``state``: what one booking remembers, grouped by concern, and its query view;
- ``guards``: who may make which update in which state (pure functions);
- ``timers``: what is due when, and monitoring windows (pure functions);
- ``chain_events``: applying chain events, reorgs and escalations against the shell's effects;
- ``watch``: deadlines, monitoring windows and polls, and the operator's own transactions;
- ``authorizations``: signing payment and cancellation authorizations;
- ``repairs``: the bodies of the operator's ``resync`` and ``redrive`` updates.
"""

from temporalio import workflow

# The pure modules are deterministic: the sandbox passes them through (re-importing them per
# run would also re-create the types their dataclasses convert to).
with workflow.unsafe.imports_passed_through():
    from workflows.booking.guards import MAX_REASON_LENGTH
from workflows.booking.workflow import BookingWorkflow

__all__ = ["MAX_REASON_LENGTH", "BookingWorkflow"]
