"""The party directory the settings describe: SQL over the marketplace's users table."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bookme.settings import Settings, SettingsError
from db.directory import PartyDirectory
from db.directory_sql import DirectoryNames, SqlPartyDirectory


def party_directory(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> PartyDirectory | None:
    """The directory over `BOOKME_DIRECTORY_*`; None when BOOKME_DIRECTORY_USERS_TABLE is empty."""
    if not settings.directory_users_table:
        return None
    try:
        names = DirectoryNames(
            table=settings.directory_users_table,
            id_column=settings.directory_id_column,
            wallet_column=settings.directory_wallet_column,
            referrer_column=settings.directory_referrer_column,
            subject_column=settings.directory_subject_column,
        )
    except ValueError as exc:
        raise SettingsError(f"BOOKME_DIRECTORY_*: {exc}") from None
    return SqlPartyDirectory(sessions, names)
