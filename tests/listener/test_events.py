"""A stored event rebuilds exactly the signal that was delivered (what a revert carries).

The codec is `workflows.event_codec`; the listener is its main user, so its tests live here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chain.event_key import event_key
from chain.events import (
    BookingCancelled,
    BookingCreatedAndPaid,
    DecodedEvent,
    EventIdentity,
    LogPosition,
    ServiceCompleted,
)
from workflows.event_codec import row_payload, signal_from_event, signal_from_row
from workflows.types import EventIdentity as SignalIdentity

A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ZERO = "0x0000000000000000000000000000000000000000"
BIG = 2**255 + 12345  # JSON numbers would lose this; the payload keeps it as a string
COMMON: dict[str, Any] = {
    "identity": EventIdentity(chain_id=31337, tx_hash="0x" + "ab" * 32, log_index=7),
    "position": LogPosition(block_number=42, block_hash="0x" + "cd" * 32),
    "contract": B,
    "booking_id": "0x" + "ef" * 32,
}
EVENTS: list[DecodedEvent] = [
    BookingCreatedAndPaid(
        **COMMON,
        customer=A,
        provider=B,
        inviter=ZERO,
        amount=BIG,
        platform_fee_rate=1000,
        inviter_fee_rate=0,
    ),
    ServiceCompleted(**COMMON, provider=B, provider_amount=90, platform_fee=10, inviter_fee=0),
    BookingCancelled(
        **COMMON,
        cancelled_by=A,
        customer_amount=BIG,
        provider_amount=1,
        platform_amount=2,
        inviter_amount=3,
        reason="customer_request",
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_stored_payload_rebuilds_the_delivered_signal(event):
    signal = signal_from_event(event)
    assert signal.identity == SignalIdentity(
        chain_id=31337,
        tx_hash="0x" + "ab" * 32,
        log_index=7,
        block_number=42,
        block_hash="0x" + "cd" * 32,
    )
    # Through JSON, as Postgres jsonb would store it.
    payload = json.loads(json.dumps(row_payload(signal)))
    rebuilt = signal_from_row(
        kind=signal.kind.value,
        identity=signal.identity,
        chain_booking_id=payload["booking_id"],
        payload=payload,
    )
    assert rebuilt == signal


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_rows_in_the_old_shapes_still_rebuild_the_signal(event):
    """Rows the booking store wrote before the codec: no ``booking_id``; plain numbers also read."""
    signal = signal_from_event(event)
    payload = json.loads(json.dumps(row_payload(signal)))
    del payload["booking_id"]
    numbers = {k: int(v) if v.isdigit() else v for k, v in payload.items()}
    for stored in (payload, numbers):
        rebuilt = signal_from_row(
            kind=signal.kind.value,
            identity=signal.identity,
            chain_booking_id=signal.chain_booking_id,
            payload=stored,
        )
        assert rebuilt == signal


def test_the_event_key_is_the_same_whatever_the_hash_case():
    upper = "0x" + "AB" * 32
    key = event_key(31337, upper, 7)
    assert key == f"31337:0x{'ab' * 32}:7"
    assert EVENTS[0].identity.key == key
    assert signal_from_event(EVENTS[0]).key == key
    identity = SignalIdentity(
        chain_id=31337, tx_hash=upper, log_index=7, block_number=1, block_hash="0x" + "00" * 32
    )
    assert identity.key == key
