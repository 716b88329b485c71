"""pause/unpause and rotate-signer really change the contract."""

from __future__ import annotations

import re
from pathlib import Path

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


def _new_key_file(tmp_path: Path) -> tuple[str, Path]:
    new = Account.create()
    key_file = tmp_path / "signer.key"
    key_file.write_text("0x" + new.key.hex().removeprefix("0x") + "\n")
    return new.address, key_file


async def test_with_a_zero_delay_timelock_owner_calls_run_at_once(fresh_chain, tmp_path):
    escrow = EscrowHarness(fresh_chain, owner_delay=0)
    settings = chain_settings(fresh_chain, escrow)
    assert (await run_cli(settings, "pause")).code == 0
    unpaused = await run_cli(settings, "unpause")
    assert unpaused.code == 0, unpaused.out
    assert not escrow.escrow.functions.paused().call()

    new_signer, key_file = _new_key_file(tmp_path)
    rotated = await run_cli(settings, "rotate-signer", "--new-key-file", str(key_file))
    assert rotated.code == 0, rotated.out
    assert escrow.escrow.functions.signer().call() == new_signer


async def test_with_a_delay_owner_calls_are_scheduled_then_executed_after_it(
    fresh_chain, tmp_path, capsys
):
    escrow = EscrowHarness(fresh_chain, owner_delay=3600)
    settings = chain_settings(fresh_chain, escrow)
    new_signer, key_file = _new_key_file(tmp_path)
    c = escrow.escrow.functions

    scheduled = await run_cli(settings, "rotate-signer", "--new-key-file", str(key_file))

    assert scheduled.code == 0, scheduled.out
    assert c.signer().call() == escrow.roles.signer.address  # not yet
    match = re.search(r"bookme owner-execute (0x[0-9a-f]{64}) --from-block (\d+)", scheduled.out)
    assert match, scheduled.out
    execute = ("owner-execute", match[1], "--from-block", match[2])

    early = await run_cli(settings, *execute)
    assert early.code == 2
    assert "is not ready" in capsys.readouterr().err
    assert c.signer().call() == escrow.roles.signer.address

    escrow.travel(3600)
    done = await run_cli(settings, *execute)
    assert done.code == 0, done.out
    assert c.signer().call() == new_signer
    again = await run_cli(settings, *execute)
    assert again.code == 2
    assert "already executed" in capsys.readouterr().err


async def test_unpause_waits_for_the_delay_but_pause_does_not(fresh_chain):
    escrow = EscrowHarness(fresh_chain, owner_delay=3600)
    settings = chain_settings(fresh_chain, escrow)
    assert (await run_cli(settings, "pause")).code == 0
    assert escrow.escrow.functions.paused().call()

    scheduled = await run_cli(settings, "unpause")
    assert scheduled.code == 0
    assert "owner-execute" in scheduled.out
    assert escrow.escrow.functions.paused().call()


async def test_revoke_signer_stops_authorizations_at_once(fresh_chain, escrow: EscrowHarness):
    settings = chain_settings(fresh_chain, escrow, owner_private_key=None)
    revoked = await run_cli(settings, "revoke-signer")
    assert revoked.code == 0, revoked.out
    assert int(escrow.escrow.functions.signer().call(), 16) == 0
    escrow.expect_revert("InvalidSignature", lambda: escrow.pay(escrow.booking_auth()))
    assert "already revoked" in (await run_cli(settings, "revoke-signer")).out
