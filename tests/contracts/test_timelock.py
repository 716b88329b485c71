"""An escrow owned by its OwnerTimelock: every owner change waits out the delay, in public."""

from __future__ import annotations

import pytest

from bookme.embedded.anvil import AnvilNode
from tests.contracts.harness import EscrowHarness

pytestmark = pytest.mark.integration

DELAY = 3600


@pytest.fixture
def locked(fresh_chain: AnvilNode) -> EscrowHarness:
    return EscrowHarness(fresh_chain, owner_delay=DELAY)


SETTERS = {
    "setSigner": lambda c, a: c.setSigner(a),
    "setOperator": lambda c, a: c.setOperator(a),
    "setTreasury": lambda c, a: c.setTreasury(a),
    "setFeePolicy": lambda c, a: c.setFeePolicy(0, 0, 0),
    "withdrawOwedTo": lambda c, a: c.withdrawOwedTo(a, a),
    "transferOwnership": lambda c, a: c.transferOwnership(a),
    "unpause": lambda c, a: c.unpause(),
}


@pytest.mark.parametrize("setter", sorted(SETTERS))
def test_the_owner_account_cannot_call_a_setter_directly(locked: EscrowHarness, setter: str):
    r = locked.roles
    assert locked.timelock is not None
    assert locked.escrow.functions.owner().call() == locked.timelock.address
    call = SETTERS[setter](locked.escrow.functions, r.other.address)
    locked.expect_revert("OwnableUnauthorizedAccount", locked.fail_as(r.owner, call))


def test_a_signer_change_executes_only_after_the_delay(locked: EscrowHarness):
    r = locked.roles
    c = locked.escrow.functions
    schedule, execute = locked.owner_operation(c.setSigner(r.other.address))

    locked.send(schedule, r.owner)
    locked.expect_revert("TimelockUnexpectedOperationState", locked.fail_as(r.owner, execute))
    locked.travel(DELAY - 60)
    locked.expect_revert("TimelockUnexpectedOperationState", locked.fail_as(r.owner, execute))
    assert c.signer().call() == r.signer.address

    locked.travel(60)
    locked.send(execute, r.owner)
    assert c.signer().call() == r.other.address


def test_a_scheduled_change_may_be_cancelled_while_it_waits(locked: EscrowHarness):
    r = locked.roles
    assert locked.timelock is not None
    schedule, execute = locked.owner_operation(locked.escrow.functions.setTreasury(r.other.address))
    receipt = locked.send(schedule, r.owner)
    (scheduled,) = locked.timelock.events.CallScheduled().process_receipt(receipt)
    locked.send(locked.timelock.functions.cancel(scheduled["args"]["id"]), r.owner)
    locked.travel(DELAY)
    locked.expect_revert("TimelockUnexpectedOperationState", locked.fail_as(r.owner, execute))
    assert locked.escrow.functions.treasury().call() == r.treasury.address


@pytest.mark.parametrize("who", ["signer", "operator", "stranger"])
def test_only_the_owner_account_may_schedule_or_execute(locked: EscrowHarness, who: str):
    sender = getattr(locked.roles, who)
    schedule, execute = locked.owner_operation(locked.escrow.functions.setSigner(sender.address))
    locked.expect_revert("AccessControlUnauthorizedAccount", locked.fail_as(sender, schedule))
    locked.send(schedule, locked.roles.owner)
    locked.travel(DELAY)
    locked.expect_revert("AccessControlUnauthorizedAccount", locked.fail_as(sender, execute))


def test_the_timelock_has_no_admin_that_could_skip_the_delay(locked: EscrowHarness):
    assert locked.timelock is not None
    t = locked.timelock.functions
    admin = t.DEFAULT_ADMIN_ROLE().call()
    assert t.hasRole(admin, locked.timelock.address).call() is True
    assert t.hasRole(admin, locked.roles.owner.address).call() is False
    locked.expect_revert(
        "TimelockUnauthorizedCaller",
        locked.fail_as(locked.roles.owner, t.updateDelay(0)),
    )


def test_the_operator_pauses_at_once_but_unpausing_waits_for_the_delay(locked: EscrowHarness):
    r = locked.roles
    c = locked.escrow.functions
    locked.send(c.pause(), r.operator)
    assert c.paused().call() is True
    schedule, execute = locked.owner_operation(c.unpause())
    locked.send(schedule, r.owner)
    locked.expect_revert("TimelockUnexpectedOperationState", locked.fail_as(r.owner, execute))
    locked.travel(DELAY)
    locked.send(execute, r.owner)
    assert c.paused().call() is False
