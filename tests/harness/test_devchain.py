"""The dev chain gets its contracts once, keeps them while the chain has them, and redeploys after."""

from __future__ import annotations

import dataclasses

import pytest

from bookme.devchain import (
    TEST_WALLET_USDC_UNITS,
    DevRoles,
    anvil_default_accounts,
    ensure_deployed,
)
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.escrow import EscrowReader, FeePolicy

pytestmark = pytest.mark.integration

POLICY = FeePolicy(platform_fee_bps=1000, platform_fee_with_inviter_bps=500, inviter_fee_bps=500)


def test_derived_accounts_are_the_ones_anvil_funds(anvil):
    assert anvil_default_accounts() == anvil.accounts


async def test_deploy_once_then_reuse_then_redeploy_on_a_reset_chain(fresh_chain, tmp_path):
    roles = DevRoles.from_accounts(fresh_chain.accounts)
    path = tmp_path / "deployment.json"
    client = ChainClient([fresh_chain.http_url], expected_chain_id=31337)
    try:
        before_reset = fresh_chain.rpc("evm_snapshot")
        first, fresh = await ensure_deployed(client, roles, path, POLICY)
        assert fresh is True
        assert path.exists()
        reader = EscrowReader(client, first.escrow)
        for wallet in roles.wallets:
            assert await reader.usdc_balance_of(wallet.address) == TEST_WALLET_USDC_UNITS
        assert await reader.fee_policy() == POLICY

        again, fresh = await ensure_deployed(client, roles, path, POLICY)
        assert fresh is False
        assert again == first

        fresh_chain.rpc("evm_revert", before_reset)  # the chain forgot the contracts
        redeployed, fresh = await ensure_deployed(client, roles, path, POLICY)
        assert fresh is True
        assert await client.get_code(redeployed.escrow)
    finally:
        await client.close()


async def test_a_deployment_of_an_older_contract_is_replaced(fresh_chain, tmp_path):
    roles = DevRoles.from_accounts(fresh_chain.accounts)
    path = tmp_path / "deployment.json"
    client = ChainClient([fresh_chain.http_url], expected_chain_id=31337)
    try:
        first, _ = await ensure_deployed(client, roles, path, POLICY)
        # The file as an earlier contract version left it: the chain still has that escrow.
        stale = dataclasses.replace(first, contracts_sha256="0" * 64)
        stale.write_json(path)

        replaced, fresh = await ensure_deployed(client, roles, path, POLICY)

        assert fresh is True
        assert replaced.escrow != first.escrow
        assert replaced.contracts_sha256 == load_artifact("BookingEscrow").sources_sha256
    finally:
        await client.close()
