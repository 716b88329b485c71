"""The committed artifacts match the sources and load without Node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.artifacts import (
    CONTRACT_NAMES,
    ArtifactError,
    load_artifact,
    openzeppelin_version,
    sources_sha256,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_is_built_from_the_current_sources(name: str):
    artifact = load_artifact(name)
    assert artifact.sources_sha256 == sources_sha256(), (
        f"chain/artifacts/{name}.json is stale: run `make contracts` and commit the result"
    )


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_names_the_pinned_compiler(name: str):
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/solc"]["version"]
    artifact = load_artifact(name)
    assert artifact.solc.startswith(f"{pinned}+commit.")
    assert len(artifact.bytecode) > 1000


def test_openzeppelin_version_comes_from_the_lock():
    assert openzeppelin_version() == "5.7.0"


def test_hash_changes_with_any_source_byte(tmp_path: Path):
    (tmp_path / "contracts").mkdir()
    for src in (ROOT / "contracts").glob("*.sol"):
        (tmp_path / "contracts" / src.name).write_bytes(src.read_bytes())
    (tmp_path / "package-lock.json").write_bytes((ROOT / "package-lock.json").read_bytes())
    assert sources_sha256(tmp_path) == sources_sha256()

    escrow = tmp_path / "contracts" / "BookingEscrow.sol"
    escrow.write_bytes(escrow.read_bytes() + b"\n")
    assert sources_sha256(tmp_path) != sources_sha256()


def test_escrow_abi_has_the_interface_others_rely_on():
    abi = load_artifact("BookingEscrow").abi
    names = {(e["type"], e.get("name")) for e in abi}
    for fn in (
        "createAndPayBooking",
        "createAndPayBookingWithAuthorization",
        "hashBookingAuthorization",
        "completeService",
        "cancelBooking",
        "emergencyCancelBooking",
        "withdrawOwed",
        "withdrawOwedTo",
        "bookingTreasury",
        "revokeSigner",
        "MAX_AUTH_TTL",
        "MAX_REASON_BYTES",
        "getBooking",
        "nonceUsed",
        "owedBalance",
        "totalOwed",
        "feePolicy",
        "eip712Domain",
        "pause",
        "unpause",
    ):
        assert ("function", fn) in names, fn
    signatures = {
        e["name"]: ",".join(i["type"] for i in e["inputs"]) for e in abi if e["type"] == "event"
    }
    # The seeds' event signatures, unchanged (listener and consumers decode them).
    assert signatures["BookingCreatedAndPaid"] == (
        "bytes32,address,address,address,uint256,uint256,uint256"
    )
    assert signatures["ServiceCompleted"] == "bytes32,address,uint256,uint256,uint256"
    assert signatures["BookingCancelled"] == (
        "bytes32,address,uint256,uint256,uint256,uint256,string"
    )


def test_mock_usdc_has_usdcs_erc3009_interface():
    """chain/transfer_auth.py reads these; real USDC (FiatTokenV2) has the same signatures."""
    abi = load_artifact("MockUSDC").abi
    functions = {
        e["name"]: ",".join(i["type"] for i in e["inputs"]) for e in abi if e["type"] == "function"
    }
    assert functions["receiveWithAuthorization"] == (
        "address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32"
    )
    assert functions["transferWithAuthorization"] == functions["receiveWithAuthorization"]
    assert functions["cancelAuthorization"] == "address,bytes32,uint8,bytes32,bytes32"
    assert functions["authorizationState"] == "address,bytes32"
    assert functions["DOMAIN_SEPARATOR"] == functions["version"] == ""
    events = {
        e["name"]: [(i["type"], i["indexed"]) for i in e["inputs"]]
        for e in abi
        if e["type"] == "event"
    }
    for name in ("AuthorizationUsed", "AuthorizationCanceled"):
        assert events[name] == [("address", True), ("bytes32", True)]


def test_unknown_artifact_is_refused():
    with pytest.raises(ArtifactError):
        load_artifact("Nope")
