"""Compiled contract artifacts (ABI + bytecode) committed beside this module, loaded without Node.

``contracts/build.mjs`` writes them; ``sources_sha256()`` recomputes the hash it records so a
test can tell when the committed artifacts are stale. The hash is sha256 over, for every
``contracts/*.sol`` sorted by file name: name, NUL, file bytes, NUL; then
``@openzeppelin/contracts@<version>`` with the version pinned in ``package-lock.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# HostileToken is a test-only mock (misbehaving ERC-20); OwnerTimelock owns the escrow.
CONTRACT_NAMES = ("BookingEscrow", "HostileToken", "MockUSDC", "OwnerTimelock")
# What `bookme deploy` puts on a real chain: build.mjs writes their standard-JSON inputs.
VERIFIED_CONTRACT_NAMES = ("BookingEscrow", "OwnerTimelock")
OPENZEPPELIN_PACKAGE = "@openzeppelin/contracts"

# chain/artifacts/__init__.py -> repository root (only meaningful in a source checkout).
_REPO_ROOT = Path(__file__).resolve().parents[2]


class ArtifactError(RuntimeError):
    """An artifact is missing or malformed, or the sources needed to hash it are absent."""


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """One compiled contract: what web3 needs to deploy it and talk to it."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    solc: str
    sources_sha256: str


def load_artifact(name: str) -> Artifact:
    """Load ``chain/artifacts/<name>.json`` (one of ``CONTRACT_NAMES``)."""
    if name not in CONTRACT_NAMES:
        raise ArtifactError(f"unknown contract {name!r}; expected one of {CONTRACT_NAMES}")
    try:
        text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"artifact {name}.json is missing; run `make contracts`") from None
    data = json.loads(text)
    bytecode = data.get("bytecode")
    abi = data.get("abi")
    if data.get("contract") != name or not isinstance(abi, list) or not isinstance(bytecode, str):
        raise ArtifactError(f"artifact {name}.json is malformed; run `make contracts`")
    if not bytecode.startswith("0x") or len(bytecode) <= 2:
        raise ArtifactError(f"artifact {name}.json has no bytecode; run `make contracts`")
    return Artifact(
        name=name,
        abi=tuple(abi),
        bytecode=bytecode,
        solc=str(data["solc"]),
        sources_sha256=str(data["sources_sha256"]),
    )


def load_standard_input(name: str) -> dict[str, Any]:
    """``chain/artifacts/standard-input/<name>.json``: the solc standard-JSON input of ``name``."""
    if name not in VERIFIED_CONTRACT_NAMES:
        raise ArtifactError(
            f"no standard-JSON input for {name!r}; one of {VERIFIED_CONTRACT_NAMES}"
        )
    try:
        path = resources.files(__name__).joinpath("standard-input", f"{name}.json")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"standard-input/{name}.json is missing; run `make contracts`"
        ) from None
    if data.get("language") != "Solidity" or f"contracts/{name}.sol" not in data.get("sources", {}):
        raise ArtifactError(f"standard-input/{name}.json is malformed; run `make contracts`")
    return data


def sources_sha256(root: Path | None = None) -> str:
    """The hash ``contracts/build.mjs`` records, recomputed from the sources under ``root``."""
    base = _REPO_ROOT if root is None else root
    contracts_dir = base / "contracts"
    files = sorted(contracts_dir.glob("*.sol"), key=lambda p: p.name.encode("utf-8"))
    if not files:
        raise ArtifactError(f"no Solidity sources under {contracts_dir}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8"))
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(f"{OPENZEPPELIN_PACKAGE}@{openzeppelin_version(base)}".encode())
    return digest.hexdigest()


def openzeppelin_version(root: Path | None = None) -> str:
    """The OpenZeppelin version pinned in ``package-lock.json`` (what the build must use)."""
    base = _REPO_ROOT if root is None else root
    lock_path = base / "package-lock.json"
    try:
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
        version = lock["packages"][f"node_modules/{OPENZEPPELIN_PACKAGE}"]["version"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read the {OPENZEPPELIN_PACKAGE} pin from {lock_path}") from exc
    if not isinstance(version, str):
        raise ArtifactError(f"{lock_path} pins {OPENZEPPELIN_PACKAGE} to a non-string version")
    return version


__all__ = [
    "CONTRACT_NAMES",
    "VERIFIED_CONTRACT_NAMES",
    "Artifact",
    "ArtifactError",
    "load_artifact",
    "load_standard_input",
    "openzeppelin_version",
    "sources_sha256",
]
