"""Column types that guard money and time before anything reaches Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from db.base import BaseUnits, UtcDateTime

DIALECT = postgresql.dialect()


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_base_units_convert_exactly_both_ways(units):
    column_type = BaseUnits()
    stored = column_type.process_bind_param(units, DIALECT)
    assert stored == Decimal(units)
    assert column_type.process_result_value(stored, DIALECT) == units


@pytest.mark.parametrize("value", [1.0, Decimal("1"), True, "1"])
def test_base_units_refuse_anything_but_int(value):
    with pytest.raises(TypeError):
        BaseUnits().process_bind_param(value, DIALECT)


def test_base_units_refuse_a_fractional_stored_value():
    with pytest.raises(ValueError, match="non-integral"):
        BaseUnits().process_result_value(Decimal("1.5"), DIALECT)


def test_utc_datetime_refuses_naive_and_reads_naive_as_utc():
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), DIALECT)
    assert UtcDateTime().process_result_value(datetime(2026, 1, 1), DIALECT) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
