"""Declarative base, constraint naming and the column types money and chain data need."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import DateTime, Enum, MetaData, Numeric, Text, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.types import NullType, TypeDecorator

# Deterministic names so migrations, models and error handling agree on them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class BaseUnits(TypeDecorator[int]):
    """Integer token base units in NUMERIC(78,0): any uint256 fits, Python sees `int`, never float."""

    impl = Numeric(78, 0)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"base units must be int, got {type(value).__name__}")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        as_int = int(value)
        if as_int != value:
            raise ValueError(f"non-integral base units in database: {value}")
        return as_int


class UtcDateTime(TypeDecorator[datetime]):
    """TIMESTAMPTZ that always reads back aware (UTC), even from an adopted legacy TIMESTAMP column."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        # Legacy TIMESTAMP columns hold UTC wall-clock times (the database's timezone).
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# A bind parameter of no SQL type: the asyncpg dialect renders no cast for it.
_UNTYPED: Any = NullType()


class MarketplaceId(TypeDecorator[str]):
    """A marketplace id (service, customer, provider) as text, bound without a type cast.

    An adopted legacy table may store these as UUID (e.g. referencing its users table);
    without the driver's `::VARCHAR` cast Postgres takes the column's own type, and reads
    come back as `str` either way.
    """

    impl = Text
    cache_ok = True

    def bind_expression(self, bindvalue: BindParameter[str]) -> ColumnElement[str] | None:
        return type_coerce(bindvalue, _UNTYPED)

    def process_result_value(self, value: object, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


def string_enum(enum: type[StrEnum], length: int) -> Enum:
    """A StrEnum stored as its value in VARCHAR; the table's named CHECK constraint guards it."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Every table of the service; Alembic migrations are the source of the schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB}
