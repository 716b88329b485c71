"""A freshly deployed escrow per test, on the session's anvil rolled back afterwards."""

from __future__ import annotations

import pytest

from bookme.embedded.anvil import AnvilNode
from tests.contracts.harness import EscrowHarness


@pytest.fixture
def escrow(fresh_chain: AnvilNode) -> EscrowHarness:
    return EscrowHarness(fresh_chain)
