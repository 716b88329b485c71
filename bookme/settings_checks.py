"""What a production configuration must not contain, as pure checks over one `Settings`.

Each check returns the problems it found (an empty list when the configuration passes), so the
settings validator can refuse to start with every reason at once. Secret values never reach a
message: keys are compared by the address they derive, secrets by length and a crude entropy
estimate.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from pydantic import SecretStr

from chain.keys import InvalidKeyError, TransactionKey
from chain.networks import CANONICAL_USDC, LOCAL_CHAIN_IDS

if TYPE_CHECKING:
    from bookme.settings import Settings

# Algorithms PyJWT verifies that we accept at all; "none" and anything unknown are refused in
# every environment. HS* needs the shared secret, the others a JWKS.
JWT_ALGORITHMS = frozenset(
    {
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "EdDSA",
    }
)

# The accounts anvil (and hardhat) fund from the published mnemonic "test test ... junk",
# m/44'/60'/0'/0/0..9. Anyone can sign for them; a key deriving one of these is not a secret.
ANVIL_ADDRESSES = frozenset(
    {
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
        "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    }
)

# HS256 is only as strong as its secret: an offline brute force of a short or patterned one
# yields operator tokens. 32 bytes, and an entropy estimate that 32 random bytes clear in any
# usual encoding (measured over 20 000 draws: hex >= 222 bits, base64/urlsafe >= 184) while a
# repeated or dictionary-like string, or 16-24 random bytes (hex <= 128, urlsafe <= 160), do not.
MIN_JWT_SECRET_BYTES = 32
MIN_JWT_SECRET_ENTROPY_BITS = 168
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret-change-me"})


def production_problems(settings: Settings) -> list[str]:
    """Every reason ``settings`` must not run in production (empty when none)."""
    return [
        *jwt_problems(settings),
        *webhook_problems(settings),
        *key_problems(settings),
        *chain_problems(settings.chain_id, settings.usdc_address),
        *service_problems(settings),
        *cors_problems(settings),
    ]


def estimated_entropy_bits(secret: str) -> float:
    """Length x the empirical Shannon entropy per character: crude, but patterns score low."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    return per_char * len(secret)


def jwt_problems(settings: Settings) -> list[str]:
    if settings.jwks_url:
        missing = [
            f"BOOKME_JWT_{name}"
            for name, value in (
                ("AUDIENCE", settings.jwt_audience),
                ("ISSUER", settings.jwt_issuer),
            )
            if not value.strip()
        ]
        if missing:
            # Without both, a token the same identity provider issued to another app is accepted.
            return [f"BOOKME_JWKS_URL needs {' and '.join(missing)}"]
        return []
    secret = settings.jwt_secret.get_secret_value()
    if secret.strip().lower() in PLACEHOLDER_SECRETS:
        return ["BOOKME_JWT_SECRET is a placeholder (or set BOOKME_JWKS_URL)"]
    if (
        len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES
        or estimated_entropy_bits(secret) < MIN_JWT_SECRET_ENTROPY_BITS
    ):
        return [
            f"BOOKME_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} random bytes "
            "(e.g. `openssl rand -hex 32`)"
        ]
    return []


def published_key_problem(secret: SecretStr | None, setting: str) -> str | None:
    """Why this key must not be used in production, or None (compares derived addresses)."""
    if secret is None:
        return None
    try:
        address = TransactionKey(secret).address
    except InvalidKeyError:
        return f"BOOKME_{setting} does not hold a private key"
    if address in ANVIL_ADDRESSES:
        return f"BOOKME_{setting} is a published test key (anvil account {address})"
    return None


def key_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    for name in ("signer", "operator", "owner", "deployer"):
        # After file loading: compose passes keys as *_KEY_FILE, never as values.
        setting = (
            f"{name.upper()}_PRIVATE_KEY"
            if getattr(settings, f"{name}_private_key") is not None
            else f"{name.upper()}_KEY_FILE"
        )
        problem = published_key_problem(getattr(settings, f"{name}_key")(), setting)
        if problem is not None:
            problems.append(problem)
    return problems


def chain_problems(chain_id: int, usdc_address: str) -> list[str]:
    if chain_id in LOCAL_CHAIN_IDS:
        return [f"BOOKME_CHAIN_ID={chain_id} is a local development chain"]
    canonical = CANONICAL_USDC.get(chain_id)
    if canonical is None:
        return [f"no canonical USDC is known for BOOKME_CHAIN_ID={chain_id}"]
    if not usdc_address:
        return [f"BOOKME_USDC_ADDRESS must be set (USDC on chain {chain_id} is {canonical})"]
    if usdc_address.lower() != canonical.lower():
        return [f"BOOKME_USDC_ADDRESS is not USDC on chain {chain_id} (that is {canonical})"]
    return []


# A retry horizon shorter than this loses events over a weekend outage of the marketplace.
MIN_WEBHOOK_RETRY_HORIZON_SECONDS = 86400


def webhook_problems(settings: Settings) -> list[str]:
    """The webhook secrets' encryption key must be a real one; retries must span a day."""
    from bookme.webhook_settings import DEV_WEBHOOK_ENCRYPTION_KEY

    problems = []
    key = settings.webhook_encryption_key.get_secret_value()
    if key == DEV_WEBHOOK_ENCRYPTION_KEY:
        problems.append("BOOKME_WEBHOOK_ENCRYPTION_KEY is the development default")
    elif not _is_fernet_key(key):
        problems.append(
            "BOOKME_WEBHOOK_ENCRYPTION_KEY is not a Fernet key (urlsafe base64, 32 bytes)"
        )
    if settings.webhook_retry_horizon_seconds < MIN_WEBHOOK_RETRY_HORIZON_SECONDS:
        problems.append(
            f"BOOKME_WEBHOOK_RETRY_HORIZON_SECONDS must be at least {MIN_WEBHOOK_RETRY_HORIZON_SECONDS}"
        )
    return problems


def _is_fernet_key(key: str) -> bool:
    import base64

    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        return False


def service_problems(settings: Settings) -> list[str]:
    return [
        f"BOOKME_{name} must point at a real service in production"
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("TEMPORAL_ADDRESS", settings.temporal_address),
            ("RPC_URLS", ",".join(settings.rpc_urls)),
        )
        if not value
    ]


def cors_problems(settings: Settings) -> list[str]:
    """Any origin with credentials lets every site act with a user's cookies: refused."""
    if settings.cors_allow_credentials and "*" in settings.cors_origins:
        return ["BOOKME_CORS_ORIGINS=* with BOOKME_CORS_ALLOW_CREDENTIALS=true (list the origins)"]
    return []
