"""The burst bench reads gaps, double sends and overlap from ledger rows (no stack, no timings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bench.burst import _figures

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ESCROW = "0x00000000000000000000000000000000000000e5"


def _booking(n: int) -> dict[str, Any]:
    release = T0
    return {
        "id": f"b{n}",
        "status": "COMPLETED",
        "chain_id": f"0x{n:064x}",
        "release_at": release,
        "completed": release + timedelta(seconds=20 + n),
        "sent_row": None,
        "mined": T0 + timedelta(seconds=16 + n, milliseconds=500),
    }


def _sent(nonce: int, booking: int, *, start: float, end: float, outcome: str = "succeeded"):
    return {
        "nonce": nonce,
        "intent": f"complete_service:{ESCROW}:0x{booking:064x}",
        "created_at": T0 + timedelta(seconds=start),
        "settled_at": T0 + timedelta(seconds=end),
        "outcome": outcome,
    }


def test_consecutive_overlapping_sends_are_counted_as_in_flight_without_gaps():
    ledger = [_sent(7 + n, n, start=16 + n, end=18 + n) for n in range(3)]
    f = _figures([_booking(n) for n in range(3)], ledger, 3, 3, 1.0)
    assert (f.nonce_gaps, f.intents_sent_twice, f.max_in_flight) == (0, 0, 2)
    assert f.completed == f.within_goal == 3
    assert f.timer_to_sent.n == 3
    assert round(f.timer_to_sent.p50) == 2000  # due at release + 15 s, sent at +17 s
    assert round(f.sent_to_mined.p50) == 500


def test_a_skipped_nonce_and_a_booking_sent_twice_are_reported():
    ledger = [
        _sent(7, 0, start=16, end=17),
        _sent(9, 1, start=17, end=18),  # nonce 8 never used: a gap
        _sent(10, 1, start=18, end=19),  # the same booking again
    ]
    f = _figures([_booking(n) for n in range(2)], ledger, 2, 2, 1.0)
    assert f.nonce_gaps == 1
    assert f.intents_sent_twice == 1
    assert f.max_in_flight == 1
