"""The marketplace's word on who is who: the party directory.

Price, payee, inviter and a user's wallets are facts the marketplace owns. The service reads
them through this interface and never from the request of the party who benefits. The
default implementation reads the marketplace's own tables (`db/directory_sql.py`, table and
column names from settings); tests use an in-memory one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class DirectoryUser:
    """A marketplace user as the directory knows them."""

    user_id: str
    # Wallets the user may pay from or be paid to, checksummed; the first is the primary one.
    wallets: tuple[str, ...] = ()
    # The role the marketplace gives this user when a token carries none (None: decided per
    # booking, by whether the user is its customer or its provider).
    role: str | None = None


class DirectoryMissing(LookupError):
    """The directory lacks a fact a request needs; `field` names it for the 4xx."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class DirectoryUnavailable(RuntimeError):
    """The directory cannot be read at all (its table or a column is missing, a bad setting)."""


class PartyDirectory(Protocol):
    """Lookups over the marketplace's own data. Each returns None when the fact is absent."""

    async def user_for_subject(self, subject: str) -> DirectoryUser | None:
        """The user behind an identity provider's subject (`sub`, e.g. a Privy DID)."""
        ...

    async def user(self, user_id: str) -> DirectoryUser | None:
        """The user with the marketplace's own id."""
        ...

    async def provider_wallet(self, provider_id: str) -> str | None:
        """Where a provider is paid (checksummed)."""
        ...

    async def inviter_wallet(self, *, customer_id: str, provider_id: str) -> str | None:
        """The inviter of a booking under the marketplace's referral rule, None for none.

        Never the customer's own wallet: a self-referral is refused by the caller. Raises
        `DirectoryMissing` ("inviter_wallet") when the customer has a referrer who cannot be
        paid (no such user, no wallet): dropping the inviter would silently take their fee.
        """
        ...


def referral_inviter(referrer_id: str | None, referrer: DirectoryUser | None) -> str | None:
    """The marketplace's referral rule: a booking's inviter is the customer's referrer's wallet.

    None when the customer has no referrer; a referrer the directory cannot pay (no such user,
    no wallet) is `DirectoryMissing`, not "no inviter", so no referrer loses a fee silently.
    """
    if referrer_id is None:
        return None
    if referrer is None:
        raise DirectoryMissing(
            "inviter_wallet", f"the customer's referrer {referrer_id!r} is not a known user"
        )
    if not referrer.wallets:
        raise DirectoryMissing(
            "inviter_wallet", f"the customer's referrer {referrer_id!r} has no wallet"
        )
    return referrer.wallets[0]
