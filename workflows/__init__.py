"""Temporal workflows and the types shared with the API, listener and worker.

``WORKFLOWS`` is what ``worker.py`` registers; ``DATA_CONVERTER`` is what every client and
worker uses (see ``workflows/types/__init__.py`` for why the default converter suffices).
"""

from temporalio.converter import DataConverter

from workflows.booking import BookingWorkflow
from workflows.constants import TASK_QUEUE, booking_workflow_id, orphan_workflow_id
from workflows.orphan import OrphanPaymentWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.retention import RetentionWorkflow
from workflows.webhook_relay import WebhookRelayWorkflow

DATA_CONVERTER = DataConverter.default

WORKFLOWS: list[type] = [
    BookingWorkflow,
    OrphanPaymentWorkflow,
    ReconcileWorkflow,
    RetentionWorkflow,
    WebhookRelayWorkflow,
]

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
