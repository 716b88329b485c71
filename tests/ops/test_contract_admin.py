"""pause/unpause and rotate-signer really change the contract."""

from __future__ import annotations

from eth_account import Account

from tests.contracts.harness import EscrowHarness
from tests.ops.conftest import chain_settings, run_cli


async def test_pause_then_unpause(fresh_chain, escrow: EscrowHarness):
    settings = chain_settings(fresh_chain, escrow)
    assert not escrow.escrow.functions.paused().call()

    paused = await run_cli(settings, "pause")
    assert paused.code == 0, paused.out
    assert escrow.escrow.functions.paused().call()
    escrow.expect_revert("EnforcedPause", lambda: escrow.pay(escrow.booking_auth()))
    assert "already paused" in (await run_cli(settings, "pause")).out

    unpaused = await run_cli(settings, "unpause")
    assert unpaused.code == 0, unpaused.out
    assert not escrow.escrow.functions.paused().call()
    escrow.pay(escrow.booking_auth())


async def test_unpause_needs_the_owner_key(fresh_chain, escrow: EscrowHarness, capsys):
    settings = chain_settings(fresh_chain, escrow, owner_private_key=None)
    assert (await run_cli(settings, "pause")).code == 0  # the operator may pause
    refused = await run_cli(settings, "unpause")
    assert refused.code == 2
    assert "no contract owner key" in capsys.readouterr().err
    assert escrow.escrow.functions.paused().call()


async def test_rotate_signer_then_new_signatures_are_accepted(
    fresh_chain, escrow: EscrowHarness, tmp_path, capsys
):
    settings = chain_settings(fresh_chain, escrow)
    new = Account.create()
    new_key = "0x" + new.key.hex().removeprefix("0x")
    key_file = tmp_path / "signer.key"
    key_file.write_text(new_key + "\n")

    rotated = await run_cli(settings, "rotate-signer", "--new-key-file", str(key_file))

    assert rotated.code == 0
    assert escrow.escrow.functions.signer().call() == new.address
    assert new_key.removeprefix("0x") not in rotated.out + capsys.readouterr().err
    assert "BOOKME_SIGNER_KEY_FILE" in rotated.out
    escrow.expect_revert("InvalidSignature", lambda: escrow.pay(escrow.booking_auth()))
    auth = escrow.booking_auth()
    escrow.pay(auth, escrow.sign(auth, key=new_key))
    assert escrow.booking(auth.booking_id)[0] == 1  # PAID
    assert (await run_cli(settings, "rotate-signer", "--new-key-file", str(key_file))).code == 0
