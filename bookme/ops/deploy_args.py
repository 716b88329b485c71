"""``bookme deploy``: the escrow on any chain, a dry run first, and what an explorer needs.

On a local chain (31337/1337) with no role given it deploys MockUSDC + the escrow with anvil's
published roles and funds the test wallets, as ``make dev`` does. Anywhere else every role is
explicit (``--owner`` the multisig proposing on the OwnerTimelock, ``--signer``, ``--operator``,
``--treasury``), the deployer key comes from ``BOOKME_DEPLOYER_KEY_FILE``, the USDC is Circle's for
the chain id (chain/networks.py) and the timelock delay is 48 h unless configured (never 0).
``--dry-run`` prints every transaction (from, to, data size, gas) and sends nothing. A real run
writes the deployment file and, beside it in ``verify/``, the standard-JSON inputs and the
constructor arguments an explorer asks for (chain/verification.py).
"""

from __future__ import annotations

import argparse

ROLE_FLAGS = ("owner", "signer", "operator", "treasury")


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="keep the deployment file's contracts when the chain still has them",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print every step and transaction; send nothing"
    )
    for role, what in zip(
        ROLE_FLAGS,
        (
            "the account proposing on the escrow's OwnerTimelock (a multisig in production)",
            "the EIP-712 signer's address (its key stays on the workers)",
            "the operator's address (auto-complete and refunds; its key stays on the workers)",
            "where platform fees go",
        ),
        strict=True,
    ):
        parser.add_argument(
            f"--{role}", metavar="ADDRESS", help=f"{what}; required off local chains"
        )
