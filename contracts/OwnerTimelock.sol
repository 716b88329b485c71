// SPDX-License-Identifier: MIT
pragma solidity 0.8.27;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @title OwnerTimelock
 * @notice The BookingEscrow's owner: every owner call (signer, operator, treasury, fee policy,
 * unpause, owed redirects, ownership transfer) is scheduled here, public while it waits, and
 * executable only after `getMinDelay()` seconds; a proposer may cancel it meanwhile.
 *
 * OpenZeppelin's TimelockController without an admin: only the timelock itself (through a
 * delayed operation) can grant roles or change the delay, so no key can skip the wait.
 * chain/deploy.py makes the owner account (a multisig in production) proposer, canceller and
 * executor, and allows a zero delay on local chains only.
 */
contract OwnerTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
