"""anvil's old block states stay beside its log, bounded, and go away with the node.

By default anvil writes them under ~/.foundry/anvil/tmp without bound and never removes them:
the test runs and soaks of one day filled this machine's 250 GB disk that way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bookme.embedded.anvil import ANVIL_PERSISTED_STATES, AnvilNode
from bookme.embedded.process import free_port

pytestmark = pytest.mark.integration


def _files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_old_states_are_bounded_beside_the_log_and_removed_on_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # anvil's default cache lives under $HOME
    node = AnvilNode(port=free_port(), log_path=tmp_path / "logs" / "anvil.log")
    node.log_path.parent.mkdir()
    node.start()
    try:
        # Each mined block is a state; anvil keeps only a handful in memory.
        node.rpc("anvil_mine", hex(ANVIL_PERSISTED_STATES * 2))
        head = int(str(node.rpc("eth_blockNumber")), 16)
        recent = node.rpc("eth_getBalance", node.accounts[0].address, hex(head - 20))
        persisted = _files(node.states_dir)
    finally:
        node.stop()

    assert head == ANVIL_PERSISTED_STATES * 2
    assert int(str(recent), 16) > 0  # a state near the head still answers
    assert 0 < persisted <= ANVIL_PERSISTED_STATES
    assert _files(home) == 0
    assert not node.states_dir.exists()
