"""Temporal workflows and the types shared with the API, listener and worker.

``WORKFLOWS`` is what ``worker.py`` registers; ``DATA_CONVERTER`` is what every client and
worker uses (see ``workflows/types/__init__.py`` for why the default converter suffices).

The workflow classes are imported on first use, not here: the sandbox re-imports this package
as the parent of every workflow module it loads for a run, and importing every workflow here
would re-import all five for each booking (``workflows/sandbox.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from temporalio.converter import DataConverter

from workflows.constants import TASK_QUEUE, booking_workflow_id, orphan_workflow_id

if TYPE_CHECKING:
    from workflows.booking import BookingWorkflow
    from workflows.orphan import OrphanPaymentWorkflow
    from workflows.reconcile import ReconcileWorkflow
    from workflows.retention import RetentionWorkflow
    from workflows.webhook_relay import WebhookRelayWorkflow

    WORKFLOWS: list[type]

DATA_CONVERTER = DataConverter.default

# Each workflow class and the module that defines it, in registration order.
_WORKFLOW_MODULES = {
    "BookingWorkflow": "workflows.booking",
    "OrphanPaymentWorkflow": "workflows.orphan",
    "ReconcileWorkflow": "workflows.reconcile",
    "RetentionWorkflow": "workflows.retention",
    "WebhookRelayWorkflow": "workflows.webhook_relay",
}


def __getattr__(name: str) -> Any:
    if name == "WORKFLOWS":
        return [__getattr__(cls) for cls in _WORKFLOW_MODULES]
    if name in _WORKFLOW_MODULES:
        return getattr(importlib.import_module(_WORKFLOW_MODULES[name]), name)
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")


__all__ = [
    "DATA_CONVERTER",
    "TASK_QUEUE",
    "WORKFLOWS",
    "BookingWorkflow",
    "OrphanPaymentWorkflow",
    "ReconcileWorkflow",
    "RetentionWorkflow",
    "WebhookRelayWorkflow",
    "booking_workflow_id",
    "orphan_workflow_id",
]
