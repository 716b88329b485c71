"""A load run's chain funds a customer wallet for every two lifecycles in flight."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.traffic import dev_accounts_for
from bookme.devchain import ROLE_ACCOUNTS, DevRoles, anvil_default_accounts
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port

pytestmark = pytest.mark.integration


def test_anvil_funds_the_accounts_a_concurrency_needs(tmp_path: Path) -> None:
    count = dev_accounts_for(12)
    node = AnvilNode(port=free_port(), log_path=tmp_path / "anvil.log", account_count=count)
    node.start()
    try:
        balances = [
            int(str(node.rpc("eth_getBalance", a.address, "latest")), 16) for a in node.accounts
        ]
    finally:
        node.stop()

    assert len(node.accounts) == count
    # The same mnemonic: the dev chain's ten accounts come first, in their usual parts.
    assert node.accounts[:10] == anvil_default_accounts()
    assert all(balance > 0 for balance in balances)
    wallets = DevRoles.from_accounts(node.accounts).wallets
    # The customers are all the wallets but the last (the catch-up emitter's).
    assert len(wallets) - 1 == 2 * 12
    assert len(wallets) == count - ROLE_ACCOUNTS
