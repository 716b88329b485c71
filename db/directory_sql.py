"""The party directory over the marketplace's own users table; its names come from settings.

The defaults are the seed's shape: ``users(id, wallet_address, referred_by, privy_did)``, where
``referred_by`` holds the referrer's user id and ``privy_did`` the identity provider's subject.
Every name is checked as a SQL identifier and double-quoted; values from requests are only ever
bound parameters. The id column's type is read from the catalog once, and an id is bound as
text and cast to it, so the table's own index on its id serves every lookup whatever its type
(uuid, bigint, text); an id that type cannot hold is no user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_hex_address, to_checksum_address
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.directory import DirectoryUnavailable, DirectoryUser, referral_inviter
from db.errors import sqlstate

# Postgres identifiers as an operator would write them unquoted (63 bytes at most).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# What `regtype::text` prints for the column types an id can have (`character varying`, ...).
TYPE_NAME = re.compile(r"[a-z_][a-z0-9_ ]{0,62}")
# Undefined table, column, function/operator (a referrer column of another type), schema.
_MISCONFIGURED = ("42P01", "42703", "42883", "3F000")
_NOT_OF_THIS_TYPE = "22P02"  # invalid text representation: "abc" for a uuid or bigint id


@dataclass(frozen=True, kw_only=True)
class DirectoryNames:
    """Where the marketplace keeps its users; an empty optional column turns its lookup off."""

    table: str = "users"
    id_column: str = "id"
    wallet_column: str = "wallet_address"
    referrer_column: str = "referred_by"  # "": no referrals, no inviter ever
    subject_column: str = "privy_did"  # "": users are not found by an identity provider subject

    def __post_init__(self) -> None:
        parts = self.table.split(".")
        if len(parts) > 2 or not all(IDENTIFIER.fullmatch(part) for part in parts):
            raise ValueError(f"directory table {self.table!r} is not a [schema.]table identifier")
        for name in ("id_column", "wallet_column", "referrer_column", "subject_column"):
            value = getattr(self, name)
            optional = name in ("referrer_column", "subject_column")
            if not (optional and value == "") and not IDENTIFIER.fullmatch(value):
                raise ValueError(f"directory {name} {value!r} is not a SQL identifier")


def quoted(name: str) -> str:
    """`schema.table` -> `"schema"."table"` (names are validated identifiers: no quotes inside)."""
    return ".".join(f'"{part}"' for part in name.split("."))


def checksummed(value: object) -> str | None:
    """A stored wallet as EIP-55, None when absent or not an address (no usable wallet)."""
    if not isinstance(value, str) or not is_hex_address(value.strip()):
        return None
    return to_checksum_address(value.strip())


class SqlPartyDirectory:
    """`PartyDirectory` over SQL: users by id or subject, payout wallets, referrers."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], names: DirectoryNames | None = None
    ) -> None:
        self._sessions = sessions
        self._names = names if names is not None else DirectoryNames()
        self._id_type: str | None = None

    async def user(self, user_id: str) -> DirectoryUser | None:
        rows = await self._select(self._user_columns(), self._names.id_column, user_id, by_id=True)
        return _user(rows[0]) if rows else None

    async def user_for_subject(self, subject: str) -> DirectoryUser | None:
        column = self._names.subject_column
        if not column:
            return None
        rows = await self._select(self._user_columns(), column, subject, by_id=False)
        # A subject shared by two users names neither: never guess who the caller is.
        return _user(rows[0]) if len(rows) == 1 else None

    async def provider_wallet(self, provider_id: str) -> str | None:
        provider = await self.user(provider_id)
        return provider.wallets[0] if provider is not None and provider.wallets else None

    async def inviter_wallet(self, *, customer_id: str, provider_id: str) -> str | None:
        column = self._names.referrer_column
        if not column:
            return None
        columns = f"CAST({quoted(column)} AS text) AS referrer"
        rows = await self._select(columns, self._names.id_column, customer_id, by_id=True)
        referrer_id = rows[0]["referrer"] if rows else None
        if referrer_id is None:
            return None
        return referral_inviter(referrer_id, await self.user(referrer_id))

    def _user_columns(self) -> str:
        n = self._names
        return (
            f"CAST({quoted(n.id_column)} AS text) AS user_id, {quoted(n.wallet_column)} AS wallet"
        )

    async def _select(
        self, columns: str, column: str, value: str, *, by_id: bool
    ) -> list[dict[str, Any]]:
        """Rows of the users table whose `column` equals `value` (two at most)."""
        target = await self._id_type_name() if by_id else "text"
        # Names are validated identifiers (and a type from the catalog); the value is bound.
        sql = (
            f"SELECT {columns} FROM {quoted(self._names.table)}"  # noqa: S608
            f" WHERE {quoted(column)} = CAST(CAST(:value AS text) AS {target}) LIMIT 2"
        )
        try:
            async with self._sessions() as session:
                result = await session.execute(text(sql), {"value": value})
                return [dict(row) for row in result.mappings()]
        except DBAPIError as exc:
            if sqlstate(exc) == _NOT_OF_THIS_TYPE:
                return []
            raise self._unavailable(exc) from None

    async def _id_type_name(self) -> str:
        """The id column's type as Postgres names it, looked up once."""
        if self._id_type is None:
            sql = (
                "SELECT CAST(atttypid AS regtype)::text FROM pg_attribute"
                " WHERE attrelid = to_regclass(:table) AND attname = :column"
                " AND attnum > 0 AND NOT attisdropped"
            )
            params = {"table": quoted(self._names.table), "column": self._names.id_column}
            async with self._sessions() as session:
                found = (await session.execute(text(sql), params)).scalar_one_or_none()
            if found is None or not TYPE_NAME.fullmatch(found):
                raise DirectoryUnavailable(
                    f"the directory table {self._names.table!r} or its id column"
                    f" {self._names.id_column!r} does not exist"
                )
            self._id_type = found
        return self._id_type

    def _unavailable(self, exc: DBAPIError) -> BaseException:
        if sqlstate(exc) in _MISCONFIGURED:
            return DirectoryUnavailable(
                f"the directory table {self._names.table!r} lacks a configured column"
                f" (SQLSTATE {sqlstate(exc)}): check the BOOKME_DIRECTORY_* settings"
            )
        return exc


def _user(row: dict[str, Any]) -> DirectoryUser:
    wallet = checksummed(row["wallet"])
    return DirectoryUser(user_id=row["user_id"], wallets=(wallet,) if wallet else ())
