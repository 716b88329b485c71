"""Operator commands run in-process against the session's real Postgres, Temporal and anvil."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from bookme.cli import build_parser
from bookme.embedded.anvil import AnvilNode
from bookme.ops.commands import run_operator_command_async
from bookme.settings import Settings
from tests.contracts.harness import EscrowHarness


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str


async def run_cli(settings: Settings, *argv: str) -> Outcome:
    """``bookme <argv>`` in-process (on the test's loop) with the given settings."""
    args = build_parser().parse_args(list(argv))
    out = io.StringIO()
    code = await run_operator_command_async(args, settings, out)
    return Outcome(code=code, out=out.getvalue())


def chain_settings(node: AnvilNode, escrow: EscrowHarness, **extra: object) -> Settings:
    r = escrow.roles
    values: dict[str, object] = {
        "rpc_urls": [node.http_url],
        "chain_id": node.chain_id,
        "escrow_address": escrow.escrow.address,
        "signer_private_key": SecretStr(r.signer.private_key),
        "operator_private_key": SecretStr(r.operator.private_key),
        "owner_private_key": SecretStr(r.owner.private_key),
        "confirmations": 0,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def escrow(fresh_chain: AnvilNode) -> EscrowHarness:
    return EscrowHarness(fresh_chain)
