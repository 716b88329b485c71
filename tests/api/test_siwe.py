"""Sign-In with Ethereum: the strict EIP-4361 parser and its checks (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.siwe import SiweError, check_message, check_signature, parse_message
from tests.api.siwe_helpers import CUSTOMER_KEY, OTHER_CUSTOMER_KEY, address_of, sign, siwe_message

ADDRESS = address_of(CUSTOMER_KEY)
NOW = datetime.now(UTC)
NONCE = "a1b2c3d4e5f6a7b8"


def test_a_full_message_parses_field_by_field() -> None:
    text = siwe_message(
        ADDRESS,
        NONCE,
        extra="\nExpiration Time: 2099-01-01T00:00:00Z\nNot Before: 2020-01-01T00:00:00Z"
        "\nRequest ID: r-1\nResources:\n- ipfs://bafy\n- https://example.com/terms",
    )
    message = parse_message(text)
    assert (message.domain, message.address, message.chain_id) == ("localhost", ADDRESS, 31337)
    assert (message.nonce, message.version, message.request_id) == (NONCE, "1", "r-1")
    assert message.statement == "Link this wallet to your BookMe account."
    assert message.expiration_time == datetime(2099, 1, 1, tzinfo=UTC)
    assert message.resources == ("ipfs://bafy", "https://example.com/terms")


def test_a_message_without_statement_parses() -> None:
    message = parse_message(siwe_message(ADDRESS, NONCE, statement=None))
    assert message.statement is None
    assert message.uri == "https://localhost/wallets"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace(ADDRESS, ADDRESS.lower()),  # not EIP-55
        lambda t: t.replace("Version: 1", "Version: 2"),
        lambda t: t.replace(f"Nonce: {NONCE}", "Nonce: short"),
        lambda t: t.replace("Chain ID: 31337", "Chain ID: 0x7a69"),
        lambda t: t + "\nSomething: else",
        lambda t: t.rsplit("\nIssued At", 1)[0],  # no Issued At
        lambda t: t.replace("Issued At: ", "Issued At: yesterday "),
        lambda t: t.replace(" wants you to sign in", " would like you to sign in"),
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.replace("URI: https://localhost/wallets", "URI: not a uri"),
    ],
)
def test_anything_but_the_exact_grammar_is_refused(mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(SiweError):
        parse_message(mangle(siwe_message(ADDRESS, NONCE)))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (siwe_message(ADDRESS, NONCE, domain="evil.example"), "not localhost"),
        (siwe_message(ADDRESS, NONCE, chain_id=1), "Chain ID"),
        (siwe_message(ADDRESS, NONCE, issued_at=NOW + timedelta(hours=1)), "future"),
        (
            siwe_message(ADDRESS, NONCE, extra="\nExpiration Time: 2020-01-01T00:00:00Z"),
            "expired",
        ),
        (siwe_message(ADDRESS, NONCE, extra="\nNot Before: 2099-01-01T00:00:00Z"), "not valid yet"),
    ],
)
def test_domain_chain_and_time_window_are_checked(text: str, problem: str) -> None:
    with pytest.raises(SiweError, match=problem):
        check_message(parse_message(text), domain="localhost", chain_id=31337, now=NOW)


def test_the_signature_must_be_the_named_addresss() -> None:
    text = siwe_message(ADDRESS, NONCE)
    check_signature(text, sign(text, CUSTOMER_KEY), ADDRESS)
    with pytest.raises(SiweError, match="not the address"):
        check_signature(text, sign(text, OTHER_CUSTOMER_KEY), ADDRESS)
    with pytest.raises(SiweError, match="not the address"):
        check_signature(text + " ", sign(text, CUSTOMER_KEY), ADDRESS)
    with pytest.raises(SiweError, match="65 bytes"):
        check_signature(text, "0x1234", ADDRESS)
    with pytest.raises(SiweError):
        check_signature(text, "0x" + "00" * 65, ADDRESS)


def test_the_readme_snippets_message_parses() -> None:
    """What the README's frontend snippet builds: no scheme, JavaScript's toISOString()."""
    text = "\n".join(
        [
            "app.example.com wants you to sign in with your Ethereum account:",
            ADDRESS,
            "",
            "Link this wallet to your BookMe account.",
            "",
            "URI: https://app.example.com",
            "Version: 1",
            "Chain ID: 8453",
            f"Nonce: {NONCE}",
            "Issued At: 2026-12-06T04:45:00.000Z",
        ]
    )
    message = parse_message(text)
    assert message.issued_at == datetime(2026, 12, 6, 4, 45, tzinfo=UTC)
    check_message(message, domain="app.example.com", chain_id=8453, now=message.issued_at)
    check_signature(text, sign(text, CUSTOMER_KEY), ADDRESS)
