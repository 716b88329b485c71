"""Settings: every knob documented, comma lists parsed, production refuses placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bookme.settings import Settings, SettingsError

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
