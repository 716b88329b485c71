"""Settings: every knob documented, comma lists parsed, production refuses placeholders."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr, ValidationError

from bookme.settings import DEV_JWT_SECRET, Settings, SettingsError
from bookme.settings_checks import ANVIL_ADDRESSES
from bookme.webhook_settings import DEV_WEBHOOK_ENCRYPTION_KEY
from chain.networks import CANONICAL_USDC

ROOT = Path(__file__).resolve().parents[2]
SECRET = "0x" + "ab" * 32


def test_every_setting_is_documented_in_env_example():
    documented = set(
        re.findall(r"^BOOKME_([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set()
    assert documented - fields == set()


def test_rpc_urls_is_an_ordered_comma_list(monkeypatch):
    monkeypatch.setenv("BOOKME_RPC_URLS", "wss://a.example/ws, https://b.example ,")
    assert Settings(_env_file=None).rpc_urls == ["wss://a.example/ws", "https://b.example"]


def test_production_refuses_placeholder_jwt_secret_and_missing_services():
    with pytest.raises(ValidationError, match="BOOKME_JWT_SECRET is a placeholder"):
        Settings(_env_file=None, environment="production")


def test_production_refuses_anvil_keys():
    with pytest.raises(ValidationError, match="SIGNER_PRIVATE_KEY is a published test key"):
        Settings(
            _env_file=None,
            environment="production",
            jwt_secret=SecretStr("a-real-secret-from-a-vault"),
            database_url="postgresql+asyncpg://db/bookme",
            temporal_address="temporal:7233",
            rpc_urls=["https://rpc.example"],
            signer_private_key=SecretStr(
                "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
            ),
        )


def test_key_from_file_and_never_in_repr(tmp_path):
    key_file = tmp_path / "signer.key"
    key_file.write_text(SECRET + "\n")
    settings = Settings(_env_file=None, signer_key_file=key_file)
    key = settings.signer_key()
    assert key is not None
    assert key.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in repr(key)


def test_unreadable_key_file_names_the_path_not_the_contents(tmp_path):
    missing = tmp_path / "nope.key"
    with pytest.raises(SettingsError, match=r"nope\.key"):
        Settings(_env_file=None, operator_key_file=missing).operator_key()


# --- production guard (security review M4) ---

# Anvil's published mnemonic: every key derived from it is public.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
BASE_MAINNET_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
# A random-looking 32-byte secret as `openssl rand -hex 32` prints it.
STRONG_SECRET = hashlib.sha256(b"bookme production guard test").hexdigest()


def _anvil_key(index: int) -> str:
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


WEBHOOK_KEY = "q0XqjNTo0Cf7OljPgu-W3jLI5a5HjPqQbbT2hjJ8yT8="  # a Fernet key made for this test


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "production",
        "jwt_secret": SecretStr(STRONG_SECRET),
        "database_url": "postgresql+asyncpg://db/bookme",
        "temporal_address": "temporal:7233",
        "rpc_urls": ["https://rpc.example"],
        "chain_id": 8453,
        "usdc_address": BASE_MAINNET_USDC,
        "webhook_encryption_key": SecretStr(WEBHOOK_KEY),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_a_complete_production_configuration_starts():
    assert _production(signer_private_key=SecretStr(SECRET)).environment == "production"


@pytest.mark.parametrize("role", ["signer", "operator", "owner"])
@pytest.mark.parametrize("index", [0, 7, 9])
@pytest.mark.parametrize("prefix", ["0x", ""])
def test_production_refuses_anvil_keys_from_key_files(tmp_path, role, index, prefix):
    key_file = tmp_path / f"{role}.key"
    key_file.write_text(_anvil_key(index).removeprefix("0x").join([prefix, "\n"]))
    with pytest.raises(ValidationError, match=f"{role.upper()}_KEY_FILE is a published test key"):
        _production(**{f"{role}_key_file": key_file})


@pytest.mark.parametrize("value", [lambda k: k.removeprefix("0x"), lambda k: k.upper()])
def test_production_refuses_anvil_keys_without_0x_or_in_another_case(value):
    with pytest.raises(ValidationError, match="OPERATOR_PRIVATE_KEY is a published test key"):
        _production(operator_private_key=SecretStr(value(_anvil_key(3)).replace("0X", "0x")))


def test_the_anvil_table_is_the_ten_accounts_of_anvils_mnemonic():
    derived = {Account.from_key(_anvil_key(i)).address for i in range(10)}
    assert derived == ANVIL_ADDRESSES


@pytest.mark.parametrize(
    "secret",
    [
        "password1",
        "a" * 64,
        "password1" * 4,
        "0123456789abcdef0123456789abcdef",  # 16 random bytes at most, as hex
        DEV_JWT_SECRET,
    ],
)
def test_production_refuses_a_short_or_patterned_jwt_secret(secret):
    with pytest.raises(ValidationError, match="BOOKME_JWT_SECRET"):
        _production(jwt_secret=SecretStr(secret))


@pytest.mark.parametrize(
    ("audience", "issuer", "missing"),
    [
        ("", "", "AUDIENCE and BOOKME_JWT_ISSUER"),
        ("bookme", "", "ISSUER"),
        ("", "https://id", "AUDIENCE"),
    ],
)
def test_production_refuses_a_jwks_without_audience_and_issuer(audience, issuer, missing):
    with pytest.raises(ValidationError, match=f"BOOKME_JWKS_URL needs BOOKME_JWT_{missing}"):
        _production(
            jwks_url="https://id.example/jwks",
            jwt_algorithm="RS256",
            jwt_audience=audience,
            jwt_issuer=issuer,
        )


def test_production_accepts_a_jwks_with_audience_and_issuer():
    settings = _production(
        jwks_url="https://id.example/jwks",
        jwt_algorithm="RS256",
        jwt_audience="bookme",
        jwt_issuer="https://id.example/",
        jwt_secret=SecretStr(""),
    )
    assert settings.jwks_url


@pytest.mark.parametrize(
    ("chain_id", "usdc", "message"),
    [
        (8453, "", "BOOKME_USDC_ADDRESS must be set"),
        (8453, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "is not USDC on chain 8453"),
        (84532, BASE_MAINNET_USDC, "is not USDC on chain 84532"),
        (1, BASE_MAINNET_USDC, "no canonical USDC is known for BOOKME_CHAIN_ID=1"),
    ],
)
def test_production_refuses_a_missing_or_non_canonical_usdc(chain_id, usdc, message):
    with pytest.raises(ValidationError, match=message):
        _production(chain_id=chain_id, usdc_address=usdc)


def test_production_accepts_the_canonical_usdc_in_any_case():
    settings = _production(chain_id=84532, usdc_address=CANONICAL_USDC[84532].lower())
    assert settings.chain_id == 84532


@pytest.mark.parametrize("chain_id", [31337, 1337])
def test_production_refuses_a_local_chain_id(chain_id):
    with pytest.raises(ValidationError, match=f"BOOKME_CHAIN_ID={chain_id} is a local"):
        _production(chain_id=chain_id)


@pytest.mark.parametrize("algorithm", ["none", "None", "HS1", ""])
@pytest.mark.parametrize("environment", ["development", "production"])
def test_jwt_algorithms_are_allow_listed_in_every_environment(algorithm, environment):
    with pytest.raises(ValidationError, match="BOOKME_JWT_ALGORITHM"):
        _production(environment=environment, jwt_algorithm=algorithm)


def test_env_example_loads_as_it_is():
    """A copy of .env.example is a working development .env (empty values mean unset)."""
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.owner_timelock_delay_seconds is None
    assert settings.trusted_proxies == []


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (DEV_WEBHOOK_ENCRYPTION_KEY, "WEBHOOK_ENCRYPTION_KEY is the development default"),
        ("not-a-key", "WEBHOOK_ENCRYPTION_KEY is not a Fernet key"),
    ],
)
def test_production_refuses_a_placeholder_webhook_encryption_key(key, problem):
    with pytest.raises(ValidationError, match=problem):
        _production(webhook_encryption_key=SecretStr(key))


def test_production_refuses_a_webhook_retry_horizon_under_a_day():
    with pytest.raises(ValidationError, match="WEBHOOK_RETRY_HORIZON_SECONDS must be at least"):
        _production(webhook_retry_horizon_seconds=3600)
