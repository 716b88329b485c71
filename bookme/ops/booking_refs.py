"""What an operator may type to name a booking: its id, its chain id, or a workflow id."""

from __future__ import annotations

import uuid

from bookme.ops.errors import OpsError
from chain.escrow import booking_id_bytes
from workflows import booking_workflow_id


def workflow_id_for(booking_ref: str) -> str:
    """``booking-<uuid>`` for a booking id; any other workflow id (orphan-, reconcile-) as is."""
    try:
        return booking_workflow_id(str(uuid.UUID(booking_ref)))
    except ValueError:
        if booking_ref.startswith(("booking-", "orphan-", "reconcile-", "retention-")):
            return booking_ref
        raise OpsError(
            f"{booking_ref!r} is neither a booking id (UUID) nor a workflow id"
        ) from None


def is_chain_booking_id(ref: str) -> bool:
    try:
        booking_id_bytes(ref)
    except ValueError:
        return False
    return True
