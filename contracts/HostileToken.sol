// SPDX-License-Identifier: MIT
pragma solidity 0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC3009} from "./ERC3009.sol";

/**
 * @title HostileToken
 * @notice Test-only ERC-20 that misbehaves on demand, so the escrow's defences against a bad
 * token are exercised: it keeps part of each transfer (fee-on-transfer), burns all gas given
 * to a transfer, or calls back into a contract in the middle of a transfer and records how
 * that call ended. Its ERC-3009 entry points (ERC3009.sol, as USDC's) misbehave the same way, so
 * the escrow's relayed payment meets the same bad token. Local chains only; nothing in
 * production deploys it.
 */
contract HostileToken is ERC3009 {
    enum Mode {
        Honest,
        FeeOnTransfer,
        BurnGas,
        Reenter
    }

    Mode public mode;
    address public reentryTarget;
    bytes public reentryCall;
    /// @notice How the last re-entry ended: success flag and its return or revert data.
    bool public reentrySucceeded;
    bytes public reentryResult;
    uint256 public reentryAttempts;

    constructor() ERC20("Hostile", "HOST") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setMode(Mode newMode) external {
        mode = newMode;
    }

    /// @notice In Reenter mode, every transfer first calls `target` with `data`.
    function setReentry(address target, bytes calldata data) external {
        reentryTarget = target;
        reentryCall = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        Mode current = mode;
        if (from == address(0) || to == address(0) || current == Mode.Honest) {
            super._update(from, to, value);
        } else if (current == Mode.FeeOnTransfer) {
            // The recipient gets one unit less than was sent; that unit is burnt.
            super._update(from, address(0), 1);
            super._update(from, to, value - 1);
        } else if (current == Mode.BurnGas) {
            assembly {
                invalid() // consumes all the gas this call frame was given
            }
        } else {
            reentryAttempts += 1;
            (reentrySucceeded, reentryResult) = reentryTarget.call(reentryCall);
            super._update(from, to, value);
        }
    }
}
