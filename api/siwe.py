"""Sign-In with Ethereum (EIP-4361): a strict parser of the message and its checks.

No SIWE library is in the lock, so the message is parsed here, line by line, against the ABNF of
EIP-4361; anything else (an extra line, a lower-case address, a missing field) is refused. The
signature is an EIP-191 personal signature recovered with `eth_account` (externally owned
accounts; contract wallets, EIP-1271, are not supported).

    ${scheme}://${domain} wants you to sign in with your Ethereum account:   (scheme optional)
    ${address}                                                               (EIP-55)
    <blank>
    ${statement}                                                             (optional, + blank)
    <blank>
    URI: ${uri}
    Version: 1
    Chain ID: ${chain-id}
    Nonce: ${nonce}                                                          (>= 8 alphanumeric)
    Issued At: ${issued-at}                                                  (RFC 3339)
    Expiration Time: ${expiration-time}                                      (optional)
    Not Before: ${not-before}                                                (optional)
    Request ID: ${request-id}                                                (optional)
    Resources:                                                               (optional)
    - ${resource}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address

CLOCK_SKEW = timedelta(seconds=60)
_HEADER = re.compile(
    r"(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/?#]+)"
    r" wants you to sign in with your Ethereum account:"
)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE = re.compile(r"[a-zA-Z0-9]{8,}")
_URI = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:\S+")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_REQUIRED = ("URI", "Version", "Chain ID", "Nonce", "Issued At")
# Optional fields, in the order EIP-4361 fixes.
_OPTIONAL = ("Expiration Time", "Not Before", "Request ID")


class SiweError(ValueError):
    """The message or its signature is not acceptable; `field` names what (for the 4xx)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, kw_only=True)
class SiweMessage:
    """The fields of a parsed EIP-4361 message."""

    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()


def _time(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SiweError(field, f"{field} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise SiweError(field, f"{field} needs a time zone")
    return parsed


def _field(lines: list[str], index: int, name: str) -> str:
    prefix = f"{name}: "
    if index >= len(lines) or not lines[index].startswith(prefix):
        raise SiweError("message", f"expected the line '{name}: ...' at line {index + 1}")
    return lines[index][len(prefix) :]


def parse_message(text: str) -> SiweMessage:
    """The message's fields, or SiweError naming the first thing wrong with it."""
    lines = text.split("\n")
    header = _HEADER.fullmatch(lines[0])
    if header is None:
        raise SiweError("message", "the first line is not an EIP-4361 sign-in request")
    if len(lines) < 9 or _ADDRESS.fullmatch(lines[1]) is None:
        raise SiweError("message", "the second line must be the 0x address")
    address = lines[1]
    if address != to_checksum_address(address):
        raise SiweError("message", "the address must be EIP-55 checksummed")
    if lines[2] != "":
        raise SiweError("message", "a blank line must follow the address")
    statement = None
    at = 3
    if lines[3] != "":
        statement, at = lines[3], 4
        if lines[4] != "":
            raise SiweError("message", "a blank line must follow the statement")
    at += 1
    fields = [_field(lines, at + i, name) for i, name in enumerate(_REQUIRED)]
    uri, version, chain, nonce, issued = fields
    at += len(_REQUIRED)
    optional: dict[str, str] = {}
    for name in _OPTIONAL:
        if at < len(lines) and lines[at].startswith(f"{name}: "):
            optional[name] = _field(lines, at, name)
            at += 1
    resources = _resources(lines, at)
    if _URI.fullmatch(uri) is None:
        raise SiweError("message", "URI is not an absolute URI")
    if version != "1":
        raise SiweError("message", "Version must be 1")
    if not chain.isascii() or not chain.isdigit():
        raise SiweError("message", "Chain ID is not a number")
    if _NONCE.fullmatch(nonce) is None:
        raise SiweError("message", "Nonce must be at least 8 letters or digits")
    return SiweMessage(
        domain=header["domain"],
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain),
        nonce=nonce,
        issued_at=_time(issued, "Issued At"),
        expiration_time=_optional_time(optional, "Expiration Time"),
        not_before=_optional_time(optional, "Not Before"),
        request_id=optional.get("Request ID"),
        resources=resources,
    )


def _optional_time(optional: dict[str, str], name: str) -> datetime | None:
    return _time(optional[name], name) if name in optional else None


def _resources(lines: list[str], at: int) -> tuple[str, ...]:
    if at == len(lines):
        return ()
    if lines[at] != "Resources:":
        raise SiweError("message", f"unexpected line {at + 1}")
    items = lines[at + 1 :]
    if not all(line.startswith("- ") and _URI.fullmatch(line[2:]) for line in items):
        raise SiweError("message", "each resource must be a line '- <URI>'")
    return tuple(line[2:] for line in items)


def check_message(message: SiweMessage, *, domain: str, chain_id: int, now: datetime) -> None:
    """The checks that need no database: domain, chain, and the message's time window."""
    if message.domain != domain:
        raise SiweError("message", f"the message is for {message.domain}, not {domain}")
    if message.chain_id != chain_id:
        raise SiweError("message", f"Chain ID must be {chain_id}")
    if message.issued_at > now + CLOCK_SKEW:
        raise SiweError("message", "Issued At is in the future")
    if message.expiration_time is not None and message.expiration_time <= now:
        raise SiweError("message", "the message has expired (Expiration Time)")
    if message.not_before is not None and message.not_before > now + CLOCK_SKEW:
        raise SiweError("message", "the message is not valid yet (Not Before)")


def check_signature(text: str, signature: str, address: str) -> None:
    """The EIP-191 signature of `text` recovers to `address`, or SiweError."""
    if _SIGNATURE.fullmatch(signature) is None:
        raise SiweError("signature", "the signature must be 0x + 65 bytes in hex")
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except (ValueError, TypeError, BadSignature):
        raise SiweError("signature", "the signature cannot be recovered") from None
    if signer != address:
        raise SiweError("signature", "the signature is not the address's")
