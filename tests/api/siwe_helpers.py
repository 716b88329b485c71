"""Building and signing EIP-4361 messages the way a frontend does (viem/ethers `personal_sign`)."""

from __future__ import annotations

from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct

# anvil's published accounts #1 and #3: tests/api/helpers.py's CUSTOMER and OTHER_CUSTOMER.
CUSTOMER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OTHER_CUSTOMER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"


def siwe_message(
    address: str,
    nonce: str,
    *,
    domain: str = "localhost",
    chain_id: int = 31337,
    statement: str | None = "Link this wallet to your BookMe account.",
    issued_at: datetime | None = None,
    extra: str = "",
) -> str:
    issued = (issued_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    lines = [
        f"https://{domain} wants you to sign in with your Ethereum account:",
        address,
        "",
        *([statement, ""] if statement is not None else [""]),
        f"URI: https://{domain}/wallets",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {issued}",
    ]
    return "\n".join(lines) + extra


def sign(message: str, key: str) -> str:
    signed = Account.sign_message(encode_defunct(text=message), private_key=key)
    return "0x" + bytes(signed.signature).hex()


def address_of(key: str) -> str:
    return str(Account.from_key(key).address)
