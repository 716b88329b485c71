"""An in-memory `PartyDirectory` for tests: users added by hand, the same referral rule."""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from db.directory import DirectoryUser, referral_inviter


@dataclass(frozen=True, kw_only=True)
class _Entry:
    user: DirectoryUser
    referrer_id: str | None
    subject: str | None


class InMemoryDirectory:
    """`PartyDirectory` over a dict; `add` users (wallets checksummed), then look them up."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def add(
        self,
        user_id: str,
        *,
        wallets: tuple[str, ...] = (),
        referrer_id: str | None = None,
        subject: str | None = None,
        role: str | None = None,
    ) -> DirectoryUser:
        """Add or replace a user; returns them as the directory reports them."""
        user = DirectoryUser(
            user_id=user_id,
            wallets=tuple(to_checksum_address(wallet) for wallet in wallets),
            role=role,
        )
        self._entries[user_id] = _Entry(user=user, referrer_id=referrer_id, subject=subject)
        return user

    async def user(self, user_id: str) -> DirectoryUser | None:
        entry = self._entries.get(user_id)
        return entry.user if entry is not None else None

    async def user_for_subject(self, subject: str) -> DirectoryUser | None:
        found = [entry.user for entry in self._entries.values() if entry.subject == subject]
        return found[0] if len(found) == 1 else None

    async def provider_wallet(self, provider_id: str) -> str | None:
        provider = await self.user(provider_id)
        return provider.wallets[0] if provider is not None and provider.wallets else None

    async def inviter_wallet(self, *, customer_id: str, provider_id: str) -> str | None:
        entry = self._entries.get(customer_id)
        referrer_id = entry.referrer_id if entry is not None else None
        if referrer_id is None:
            return None
        return referral_inviter(referrer_id, await self.user(referrer_id))
