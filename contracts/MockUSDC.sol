// SPDX-License-Identifier: MIT
pragma solidity 0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC3009} from "./ERC3009.sol";

/**
 * @title MockUSDC
 * @notice USDC stand-in for local chains only: 6 decimals, free minting, and a blocklist that
 * makes transfers from or to a listed address revert, as real USDC's blacklist does, so the
 * escrow's blocked-recipient path can be exercised. ERC-3009 as USDC has it (ERC3009.sol), under
 * USDC's EIP-712 domain name "USD Coin", version "2". Never deploy this on a public network.
 */
contract MockUSDC is ERC3009 {
    mapping(address account => bool) private _blocklisted;

    event Blocklisted(address indexed account);
    event UnBlocklisted(address indexed account);

    error AccountBlocklisted(address account);

    constructor() ERC20("USD Coin", "USDC") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Anyone may mint: this token exists only on development chains.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function blocklist(address account) external {
        _blocklisted[account] = true;
        emit Blocklisted(account);
    }

    function unBlocklist(address account) external {
        _blocklisted[account] = false;
        emit UnBlocklisted(account);
    }

    function isBlocklisted(address account) external view returns (bool) {
        return _blocklisted[account];
    }

    /// @dev Like USDC: the sender, the recipient and the calling spender must all be clear.
    function _update(address from, address to, uint256 value) internal override {
        if (_blocklisted[from]) revert AccountBlocklisted(from);
        if (_blocklisted[to]) revert AccountBlocklisted(to);
        if (_blocklisted[msg.sender]) revert AccountBlocklisted(msg.sender);
        super._update(from, to, value);
    }
}
