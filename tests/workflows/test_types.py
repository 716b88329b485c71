"""The shared types survive Temporal's default converter and agree with Settings."""

from __future__ import annotations

import sys
from dataclasses import MISSING, asdict, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, get_type_hints

import pytest

import workflows.types
from bookme.settings import Settings, default_booking_policy
from workflows import DATA_CONVERTER
from workflows.types import (
    BookingInput,
    BookingPolicy,
    BookingStatus,
    CancellationFields,
    ChainEventKind,
    ChainEventSignal,
    EventIdentity,
    PaymentFields,
)


def _identity(**overrides):
    fields: dict[str, Any] = {
        "chain_id": 31337,
        "tx_hash": "0x" + "AB" * 32,
        "log_index": 3,
        "block_number": 12,
        "block_hash": "0x" + "cd" * 32,
    }
    fields.update(overrides)
    return EventIdentity(**fields)


async def _roundtrip(value, type_hint):
    payloads = await DATA_CONVERTER.encode([value])
    (decoded,) = await DATA_CONVERTER.decode(payloads, [type_hint])
    return decoded


async def test_booking_input_roundtrips_with_aware_datetime_and_policy():
    booking = BookingInput(
        booking_id="b1",
        chain_booking_id="0x" + "11" * 32,
        customer_wallet="0xC",
        provider_wallet="0xP",
        amount_units=123_450_000,
        scheduled_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
        service_id="s",
        customer_id="c",
        provider_id="p",
        policy=default_booking_policy(payment_deadline_seconds=60),
    )
    decoded = await _roundtrip(booking, BookingInput)
    assert decoded == booking
    assert decoded.scheduled_at.tzinfo is not None


async def test_chain_event_roundtrips_with_its_kind_and_fields():
    event = ChainEventSignal(
        kind=ChainEventKind.CANCELLATION,
        identity=_identity(),
        chain_booking_id="0x" + "22" * 32,
        cancellation=CancellationFields(
            cancelled_by="0xO",
            customer_amount=10,
            provider_amount=0,
            platform_amount=0,
            inviter_amount=0,
            reason="r",
        ),
    )
    decoded = await _roundtrip(event, ChainEventSignal)
    assert decoded == event
    assert decoded.kind is ChainEventKind.CANCELLATION
    assert await _roundtrip(BookingStatus.PAID, BookingStatus) is BookingStatus.PAID


def test_event_key_ignores_block_and_tx_hash_case():
    a = _identity()
    b = _identity(tx_hash=a.tx_hash.lower(), block_number=99, block_hash="0x" + "ee" * 32)
    assert a.key == b.key == f"31337:{a.tx_hash.lower()}:3"


def test_event_must_carry_exactly_its_own_fields():
    payment = PaymentFields(
        customer="0xC",
        provider="0xP",
        inviter="0x0",
        amount=1,
        platform_fee_rate=1000,
        inviter_fee_rate=0,
    )
    with pytest.raises(ValueError, match="exactly its own fields"):
        ChainEventSignal(
            kind=ChainEventKind.COMPLETION,
            identity=_identity(),
            chain_booking_id="0x",
            payment=payment,
        )


def test_the_policy_takes_every_knob_from_settings_and_has_no_defaults_of_its_own():
    # One definition per default: Settings. The one exception decodes histories older than it.
    defaulted = {f.name for f in fields(BookingPolicy) if f.default is not MISSING}
    assert defaulted == {"settlement_finality_seconds"}
    assert default_booking_policy().settlement_finality_seconds == (
        Settings.model_construct().settlement_finality_seconds
    )


def test_every_policy_knob_comes_from_the_setting_of_the_same_name():
    changed = {
        f.name: getattr(Settings.model_construct(), f.name) + 1 for f in fields(BookingPolicy)
    }
    settings = Settings.model_construct(**changed)
    assert asdict(settings.booking_policy()) == changed


@pytest.mark.parametrize(
    ("field", "value"),
    [("poll_interval_seconds", 0), ("confirmations", -1), ("platform_fee_bps", 10_001)],
)
def test_policy_refuses_values_that_would_spin_or_overflow(field, value):
    with pytest.raises(ValueError, match=field):
        default_booking_policy(**{field: value})


@pytest.mark.parametrize(
    "cls",
    [
        value
        for value in map(vars(workflows.types).get, workflows.types.__all__)
        if is_dataclass(value)
    ],
    ids=lambda cls: cls.__name__,
)
def test_a_type_decodes_without_its_submodule_in_sys_modules(cls, monkeypatch):
    """The sandbox passes ``workflows.types`` through but not its submodules, so the converter's
    ``get_type_hints`` finds no module globals: annotations must be objects, not strings (no
    ``from __future__ import annotations`` in ``workflows/types/``)."""
    monkeypatch.delitem(sys.modules, cls.__module__)
    assert get_type_hints(cls)
