"""Which chains are local development nodes, and Circle's USDC on the chains we deploy to.

One table, read by `bookme deploy` (chain/deploy_plan.py) and the production settings checks
(bookme/settings_checks.py).
"""

from __future__ import annotations

# Chain ids of local development nodes (anvil/hardhat 31337, ganache/geth --dev 1337): the only
# chains where MockUSDC may be deployed and the owner timelock may have no delay.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})

# Circle's native USDC per chain id, as published on developers.circle.com ("USDC contract
# addresses"); never the bridged USDbC (0xd9aA…6CA on Base).
CANONICAL_USDC = {
    8453: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",  # Base mainnet
    84532: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",  # Base Sepolia
}

# Where a deployment on each chain is verified (Etherscan-compatible explorers).
EXPLORERS = {
    8453: "https://basescan.org",
    84532: "https://sepolia.basescan.org",
}


def is_local(chain_id: int) -> bool:
    return chain_id in LOCAL_CHAIN_IDS
