"""Request validation: wallets, parties, amounts, schedule, unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from api.schemas import BookingCreate, TransactionReportCreate, schedule_problem

CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
INVITER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "service_id": "svc-1",
        "provider_id": "prov-1",
        "customer_id": "cust-1",
        "customer_wallet": CUSTOMER,
        "provider_wallet": PROVIDER,
        "amount": "25.50",
        "scheduled_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
    }
    data.update(overrides)
    return data


def error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


def test_valid_booking_converts_amount_exactly() -> None:
    model = BookingCreate.model_validate(body(amount="0.000001"))
    assert model.amount_units == 1


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("customer_wallet", CUSTOMER.lower(), "checksummed"),
        ("customer_wallet", "0x1234", "20-byte"),
        ("provider_wallet", "0x0000000000000000000000000000000000000000", "zero address"),
        ("amount", "0", "greater than 0"),
        ("amount", "1.1234567", "at most 6 decimals"),
        ("amount", "-5", "decimal string"),
        ("scheduled_at", "2030-01-01T10:00:00", "timezone"),
        ("service_id", "", "at least 1"),
        ("customer_id", "", "at least 1"),
        ("customer_id", None, "valid string"),
    ],
)
def test_invalid_fields_are_named(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        BookingCreate.model_validate(body(**{field: value}))
    assert field in error_fields(info.value)
    assert fragment in str(info.value)


def test_amount_as_json_number_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        BookingCreate.model_validate(body(amount=25.5))
    assert "amount" in error_fields(info.value)


def test_parties_must_be_distinct() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        BookingCreate.model_validate(body(provider_wallet=CUSTOMER))
    with pytest.raises(ValidationError, match="inviter_wallet must differ"):
        BookingCreate.model_validate(body(inviter_wallet=PROVIDER))
    assert BookingCreate.model_validate(body(inviter_wallet=INVITER)).inviter_wallet == INVITER


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        BookingCreate.model_validate(body(platform_fee_bps=0))
    assert "platform_fee_bps" in error_fields(info.value)


def test_schedule_rules() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert schedule_problem(now + timedelta(hours=1), now) is None
    assert schedule_problem(now, now) == "must be in the future"
    assert schedule_problem(now + timedelta(days=800), now) is not None


def test_scheduled_at_is_normalized_to_utc_seconds() -> None:
    model = BookingCreate.model_validate(body(scheduled_at="2031-05-01T12:00:00.750+02:00"))
    assert model.scheduled_at_utc() == datetime(2031, 5, 1, 10, 0, tzinfo=UTC)


def test_tx_hash_format() -> None:
    TransactionReportCreate(tx_hash="0x" + "ab" * 32, kind="payment")
    with pytest.raises(ValidationError):
        TransactionReportCreate(tx_hash="0xabc", kind="payment")
    with pytest.raises(ValidationError):
        TransactionReportCreate(tx_hash="0x" + "ab" * 32, kind="refund")
