"""A transaction-signing key whose value never reaches a repr, a log line or an exception."""

from __future__ import annotations

from typing import Any, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from chain.hexutil import hash32


class InvalidKeyError(ValueError):
    """The configured key is not a usable secp256k1 private key (its value is not shown)."""


class TransactionKey:
    """Holds a private key; shows only its address."""

    __slots__ = ("_account",)

    def __init__(self, secret: SecretStr | str | bytes) -> None:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        try:
            account: LocalAccount = Account.from_key(value)
        except Exception:
            # eth-account's messages can quote the input; say nothing about it.
            raise InvalidKeyError("the private key is malformed") from None
        self._account = account

    @property
    def address(self) -> str:
        """Checksummed address of the key."""
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        """(raw signed transaction, its hash as lowercase 0x-hex)."""
        signed = self._account.sign_transaction(tx)
        return bytes(signed.raw_transaction), hash32(bytes(signed.hash))

    def __repr__(self) -> str:
        return f"TransactionKey(address={self.address!r})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a TransactionKey cannot be pickled")
