"""The one rule for which bookings column holds which escrow event's transaction."""

from __future__ import annotations

from types import SimpleNamespace

from chain.events import BookingCancelled, BookingCreatedAndPaid, ServiceCompleted
from db.held_tx import HELD_TX_COLUMN, held_tx_sql, held_txs
from db.models import Booking
from workflows.types import ChainEventKind


def test_every_event_kind_has_a_bookings_column() -> None:
    assert set(HELD_TX_COLUMN) == {kind.value for kind in ChainEventKind}
    assert {BookingCreatedAndPaid.NAME, ServiceCompleted.NAME, BookingCancelled.NAME} == set(
        HELD_TX_COLUMN
    )
    assert set(HELD_TX_COLUMN.values()) <= set(Booking.__table__.columns.keys())
    assert len(set(HELD_TX_COLUMN.values())) == len(HELD_TX_COLUMN)


def test_python_and_sql_readings_come_from_the_same_mapping() -> None:
    row = SimpleNamespace(
        blockchain_tx_hash="0xAA", completion_tx_hash=None, cancellation_tx_hash="0xcc"
    )
    assert held_txs(row) == {
        "BookingCreatedAndPaid": "0xaa",
        "ServiceCompleted": None,
        "BookingCancelled": "0xcc",
    }
    sql = held_tx_sql("kind", "b")
    for kind, column in HELD_TX_COLUMN.items():
        assert f"WHEN '{kind}' THEN b.{column}" in sql
    assert sql.startswith("CASE :kind ")
