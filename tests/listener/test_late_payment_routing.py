"""Which events a closed booking workflow never applied go to the orphan refund (pure rule)."""

from __future__ import annotations

import pytest

from listener.delivery import goes_to_orphan_refund
from workflows.types import ChainEventKind

K = ChainEventKind


@pytest.mark.parametrize(
    ("kind", "held", "expected"),
    [
        # The soak's case: mined after the workflow closed unpaid; the row holds no payment.
        (K.PAYMENT, False, True),
        # A re-inclusion of the payment the booking settled with stays the booking's.
        (K.PAYMENT, True, False),
        # The orphan refund's own BookingCancelled, for a booking row that holds no cancellation.
        (K.CANCELLATION, False, True),
        (K.CANCELLATION, True, False),
        # A completion moves no money back: never an orphan refund's.
        (K.COMPLETION, False, False),
        (K.COMPLETION, True, False),
    ],
)
def test_unheld_payments_and_cancellations_go_to_the_orphan_refund(
    kind: ChainEventKind, held: bool, expected: bool
) -> None:
    assert goes_to_orphan_refund(kind, booking_holds_tx=held) is expected
