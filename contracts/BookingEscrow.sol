// SPDX-License-Identifier: MIT
pragma solidity 0.8.27;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @dev The ERC-3009 entry point of USDC (FiatTokenV2) that a relayed payment uses.
interface IERC3009 {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}

/**
 * @title BookingEscrow
 * @notice Holds a customer's USDC for one booking until the service is completed (paid out to
 * the provider, the platform treasury and the inviter) or cancelled (split as the backend's
 * signer authorised, or refunded in full by the operator).
 *
 * Roles, each a separate key:
 * - owner (two-step transfer): fee policy, signer/operator/treasury rotation, unpause, and
 *   redirecting an owed balance. In every deployment made by chain/deploy.py the owner is an
 *   OwnerTimelock (OpenZeppelin TimelockController) whose proposer/executor is the owner
 *   account (a multisig in production), so each owner change waits out the timelock's delay
 *   and is public while it waits;
 * - signer: signs EIP-712 payment and cancellation authorizations, never sends transactions;
 * - operator: auto-completes after the release time (as anyone may), pauses new payments,
 *   revokes the signer at once (incident response: a new signer then waits for the timelock),
 *   and refunds a paid booking in full to its customer; it can move money nowhere else.
 *
 * What a leaked key can do is bounded here, not only off chain: an authorization lives at most
 * MAX_AUTH_TTL; a cancellation never pays a party more than completion would (each leg capped
 * by the split stored at payment); the treasury is fixed per booking at payment.
 *
 * Two ways to pay, one set of rules (`_createAndPay`): `createAndPayBooking`, sent by the
 * customer after approving the escrow, and `createAndPayBookingWithAuthorization`, sent by
 * anyone (the platform's relayer pays the gas) with the customer's ERC-3009
 * `ReceiveWithAuthorization` signature, whose nonce is the booking authorization's EIP-712 digest:
 * a transfer signature is good for that one booking authorization only.
 *
 * Replay protection: a booking id moves None -> Paid -> Completed | Cancelled exactly once, so
 * the id itself is the replay key; every authorization nonce is additionally single-use.
 *
 * Events: `bookingId` is `indexed` in BookingCreatedAndPaid, ServiceCompleted and
 * BookingCancelled. The event signatures (and so topic0) are unchanged from the original design,
 * but the id moves from the data to topic1, so the listener can fetch one booking's history with
 * an `eth_getLogs` topic filter (reconciliation, orphan handling) instead of scanning and
 * decoding every log of the contract. Consumers decode `bookingId` from topic1 and the other
 * fields from the data.
 *
 * Reasons: the `reason` of BookingCancelled (and of a CancellationAuthorization) is a short
 * code of at most MAX_REASON_BYTES bytes (chain/reason_codes.py), never free text: the chain is
 * public and permanent. The event keeps its `string reason`, so logs of earlier deployments
 * (with free-text reasons) and of this one decode the same way.
 *
 * A payout leg the token refuses (USDC blocklist) does not revert the whole operation: it is
 * credited to `owedBalance(recipient)`, so one blocked party cannot freeze the others' money.
 * Only the recipient itself withdraws it (once the token accepts it again); paying it to any
 * other address needs the owner (`withdrawOwedTo`), so a blocklisted party cannot use the
 * escrow to move its money to a clean address.
 */
contract BookingEscrow is EIP712, Ownable2Step, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    enum BookingStatus {
        None,
        Paid,
        Completed,
        Cancelled
    }

    struct BookingAuthorization {
        bytes32 bookingId;
        address customer;
        address provider;
        address inviter;
        uint256 amount;
        uint256 platformFeeRate;
        uint256 inviterFeeRate;
        uint256 releaseTime;
        uint256 expiry;
        uint256 nonce;
    }

    struct CancellationAuthorization {
        bytes32 bookingId;
        uint256 customerAmount;
        uint256 providerAmount;
        uint256 platformAmount;
        uint256 inviterAmount;
        string reason;
        uint256 expiry;
        uint256 nonce;
    }

    /// @notice The customer's ERC-3009 `ReceiveWithAuthorization` signature for a relayed payment
    /// (`createAndPayBookingWithAuthorization`). Only the window and the signature travel: the
    /// token's `from`, `to`, `value` and `nonce` are the booking's customer, this escrow, its
    /// amount and `hashBookingAuthorization(auth)`, so they cannot disagree with the booking.
    /// The signature is split into v, r, s: every USDC version since FiatTokenV2 has that entry
    /// point, where the `bytes signature` one (for smart-contract wallets whose ERC-1271
    /// signatures are not 65 bytes) is USDC 2.2's only.
    struct TransferAuthorization {
        uint256 validAfter;
        uint256 validBefore;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice A booking's full on-chain state, as returned by `getBooking`.
    struct Booking {
        BookingStatus status;
        address customer;
        address provider;
        address inviter;
        uint256 amount;
        uint256 platformFee;
        uint256 inviterFee;
        uint256 providerAmount;
        uint256 releaseTime;
        uint256 paidAt;
    }

    /// @dev Storage layout packed into five slots (four without an inviter): amounts fit in
    /// uint128 and times in uint64 by a wide margin, and each slot written costs ~20k gas. The
    /// booking's treasury is an index into `_treasuries` (4 bytes beside the provider) rather
    /// than an address, which would need a sixth slot.
    struct StoredBooking {
        BookingStatus status;
        address customer;
        uint64 paidAt;
        address provider;
        uint64 releaseTime;
        uint32 treasuryIndex;
        address inviter;
        uint128 amount;
        uint128 platformFee;
        uint128 inviterFee;
        uint128 providerAmount;
    }

    bytes32 public constant BOOKING_AUTHORIZATION_TYPEHASH = keccak256(
        "BookingAuthorization(bytes32 bookingId,address customer,address provider,address inviter,"
        "uint256 amount,uint256 platformFeeRate,uint256 inviterFeeRate,uint256 releaseTime,"
        "uint256 expiry,uint256 nonce)"
    );

    bytes32 public constant CANCELLATION_AUTHORIZATION_TYPEHASH = keccak256(
        "CancellationAuthorization(bytes32 bookingId,uint256 customerAmount,uint256 providerAmount,"
        "uint256 platformAmount,uint256 inviterAmount,string reason,uint256 expiry,uint256 nonce)"
    );

    uint256 public constant BPS_DENOMINATOR = 10_000;
    /// @notice Hard cap on the total fee taken from any booking, whatever the owner sets.
    uint256 public constant MAX_TOTAL_FEE_BPS = 2_000;
    /// @notice Longest an authorization may live (expiry - block.timestamp), whatever is signed:
    /// bounds what a leaked signer key leaves behind once it is revoked or rotated.
    uint256 public constant MAX_AUTH_TTL = 1 hours;
    /// @notice Longest on-chain reason (bytes): a short code, never free text.
    uint256 public constant MAX_REASON_BYTES = 32;

    IERC20 private immutable _usdc;
    address private _signer;
    address private _operator;
    /// @dev Every treasury ever set, in order; the last is current. A booking stores the index
    /// current at its payment, so a later setTreasury does not redirect its fee.
    address[] private _treasuries;

    uint256 private _platformFeeBps;
    uint256 private _platformFeeWithInviterBps;
    uint256 private _inviterFeeBps;

    mapping(bytes32 bookingId => StoredBooking) private _bookings;
    mapping(uint256 nonce => bool) private _nonceUsed;
    mapping(address account => uint256) private _owed;
    uint256 private _totalOwed;

    event BookingCreatedAndPaid(
        bytes32 indexed bookingId,
        address customer,
        address provider,
        address inviter,
        uint256 amount,
        uint256 platformFeeRate,
        uint256 inviterFeeRate
    );
    event ServiceCompleted(
        bytes32 indexed bookingId,
        address provider,
        uint256 providerAmount,
        uint256 platformFee,
        uint256 inviterFee
    );
    event BookingCancelled(
        bytes32 indexed bookingId,
        address cancelledBy,
        uint256 customerAmount,
        uint256 providerAmount,
        uint256 platformAmount,
        uint256 inviterAmount,
        string reason
    );
    event SignerUpdated(address indexed previousSigner, address indexed newSigner);
    event OperatorUpdated(address indexed previousOperator, address indexed newOperator);
    event TreasuryUpdated(address indexed previousTreasury, address indexed newTreasury);
    event FeePolicyUpdated(
        uint256 platformFeeBps, uint256 platformFeeWithInviterBps, uint256 inviterFeeBps
    );
    event PaymentOwed(bytes32 indexed bookingId, address indexed recipient, uint256 amount);
    event OwedWithdrawn(address indexed recipient, address indexed to, uint256 amount);
    /// @notice The owner paid `party`'s owed balance to another address (`withdrawOwedTo`).
    event OwedRedirected(address indexed party, address indexed to, uint256 amount);

    error InvalidSignature();
    error AuthorizationExpired();
    error NonceAlreadyUsed();
    error BookingAlreadyExists();
    error BookingNotPaid();
    error NotCustomer();
    error NotAuthorized();
    error ReleaseTimeNotReached();
    error InvalidParties();
    error InvalidAmount();
    error FeeRateMismatch();
    error AmountsDoNotSum();
    error FeeAboveCap();
    error TransferAmountMismatch();
    error ZeroAddress();
    /// @dev A payout ran out of gas: the caller starved it, so revert rather than record a debt.
    error InsufficientGas();
    /// @dev The authorization's expiry is further than MAX_AUTH_TTL from now.
    error AuthorizationTooLong();
    /// @dev A payment's releaseTime is not after the payment's block.
    error ReleaseTimeInPast();
    /// @dev A cancellation pays a party more than completion would (its stored leg).
    error LegAboveCap();
    /// @dev An on-chain reason longer than MAX_REASON_BYTES.
    error ReasonTooLong();
    error TooManyTreasuries();

    modifier onlyOperator() {
        if (msg.sender != _operator) revert NotAuthorized();
        _;
    }

    constructor(address usdc_, address signer_, address operator_, address treasury_, address initialOwner)
        EIP712("BookingEscrow", "1")
        Ownable(initialOwner)
    {
        if (usdc_ == address(0)) revert ZeroAddress();
        _usdc = IERC20(usdc_);
        _setSigner(signer_);
        _setOperator(operator_);
        _setTreasury(treasury_);
        _setFeePolicy(1_000, 500, 500);
    }

    // ------------------------------------------------------------------ payments

    /// @notice Pays a booking into escrow; the caller must be the authorised customer, who has
    /// approved the escrow for the amount.
    function createAndPayBooking(BookingAuthorization calldata auth, bytes calldata signature)
        external
        nonReentrant
        whenNotPaused
    {
        if (msg.sender != auth.customer) revert NotCustomer();
        TransferAuthorization memory none;
        _createAndPay(auth, signature, none, false);
    }

    /// @notice Pays a booking into escrow with the customer's ERC-3009 `ReceiveWithAuthorization`
    /// instead of an approval: the customer signs twice off chain and holds no ETH; any caller
    /// (the platform's relayer) submits and pays the gas.
    /// @dev The transfer is bound to this one booking authorization: the token is asked to move
    /// `auth.amount` from `auth.customer` to this escrow under the ERC-3009 nonce
    /// `hashBookingAuthorization(auth)`, so the customer's signature verifies only for exactly
    /// that payer, amount, payee and booking authorization (and so booking id, chain and escrow).
    /// A transfer signed for another booking, amount or payer fails the token's signature check;
    /// a booking authorization cannot be paired with any other transfer. Only the escrow (`to`)
    /// can redeem a ReceiveWithAuthorization, so nobody can spend the signature elsewhere.
    function createAndPayBookingWithAuthorization(
        BookingAuthorization calldata auth,
        bytes calldata signature,
        TransferAuthorization calldata transferAuth
    ) external nonReentrant whenNotPaused {
        _createAndPay(auth, signature, transferAuth, true);
    }

    /// @notice Releases a paid booking: the customer at any time, anyone after the release time.
    function completeService(bytes32 bookingId) external nonReentrant {
        StoredBooking storage booking = _bookings[bookingId];
        if (booking.status != BookingStatus.Paid) revert BookingNotPaid();
        if (msg.sender != booking.customer && block.timestamp < booking.releaseTime) {
            revert ReleaseTimeNotReached();
        }
        booking.status = BookingStatus.Completed;

        uint256 providerAmount = booking.providerAmount;
        uint256 platformFee = booking.platformFee;
        uint256 inviterFee = booking.inviterFee;
        _payOut(bookingId, booking.provider, providerAmount);
        _payOut(bookingId, _treasuries[booking.treasuryIndex], platformFee);
        _payOut(bookingId, booking.inviter, inviterFee);

        emit ServiceCompleted(bookingId, booking.provider, providerAmount, platformFee, inviterFee);
    }

    /// @notice Cancels a paid booking with a signer-authorised split; caller: customer, provider
    /// or operator.
    function cancelBooking(CancellationAuthorization calldata auth, bytes calldata signature)
        external
        nonReentrant
    {
        StoredBooking storage booking = _bookings[auth.bookingId];
        if (booking.status != BookingStatus.Paid) revert BookingNotPaid();
        if (msg.sender != booking.customer && msg.sender != booking.provider && msg.sender != _operator)
        {
            revert NotAuthorized();
        }
        _checkExpiry(auth.expiry);
        _checkReason(auth.reason);
        if (booking.inviter == address(0) && auth.inviterAmount != 0) revert InvalidAmount();
        // Each term is checked separately so that huge values cannot wrap into a matching sum.
        uint256 amount = booking.amount;
        if (
            auth.customerAmount > amount || auth.providerAmount > amount
                || auth.platformAmount > amount || auth.inviterAmount > amount
                || auth.customerAmount + auth.providerAmount + auth.platformAmount + auth.inviterAmount
                    != amount
        ) revert AmountsDoNotSum();
        // No party gets more from a cancellation than completion would pay it, so a leaked
        // signer key cannot tilt an escrow toward the provider (or platform, or inviter).
        if (
            auth.providerAmount > booking.providerAmount || auth.platformAmount > booking.platformFee
                || auth.inviterAmount > booking.inviterFee
        ) revert LegAboveCap();
        _useNonce(auth.nonce);
        _checkSignature(hashCancellationAuthorization(auth), signature);

        booking.status = BookingStatus.Cancelled;

        // Recipients come from storage, never from the message.
        _payOut(auth.bookingId, booking.customer, auth.customerAmount);
        _payOut(auth.bookingId, booking.provider, auth.providerAmount);
        _payOut(auth.bookingId, _treasuries[booking.treasuryIndex], auth.platformAmount);
        _payOut(auth.bookingId, booking.inviter, auth.inviterAmount);

        emit BookingCancelled(
            auth.bookingId,
            msg.sender,
            auth.customerAmount,
            auth.providerAmount,
            auth.platformAmount,
            auth.inviterAmount,
            auth.reason
        );
    }

    /// @notice Refunds a paid booking in full to its customer; the operator's only money power.
    function emergencyCancelBooking(bytes32 bookingId, string calldata reason)
        external
        nonReentrant
        onlyOperator
    {
        _checkReason(reason);
        StoredBooking storage booking = _bookings[bookingId];
        if (booking.status != BookingStatus.Paid) revert BookingNotPaid();
        booking.status = BookingStatus.Cancelled;

        uint256 amount = booking.amount;
        _payOut(bookingId, booking.customer, amount);

        emit BookingCancelled(bookingId, msg.sender, amount, 0, 0, 0, reason);
    }

    /// @notice Sends the caller's owed balance (payouts the token refused earlier) to the caller
    /// itself: a party the token blocklists retries once it is cleared, never via another address.
    function withdrawOwed() external nonReentrant {
        uint256 amount = _takeOwed(msg.sender);
        // Unlike payouts this reverts on failure: the balance stays owed and the caller retries.
        _usdc.safeTransfer(msg.sender, amount);
        emit OwedWithdrawn(msg.sender, msg.sender, amount);
    }

    /// @notice Pays `party`'s owed balance to `to` (a lost key, or a compliance decision); owner
    /// only, so behind the timelock's delay and public while it waits.
    function withdrawOwedTo(address party, address to) external nonReentrant onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = _takeOwed(party);
        _usdc.safeTransfer(to, amount);
        emit OwedRedirected(party, to, amount);
    }

    // ------------------------------------------------------------------ views

    function getBooking(bytes32 bookingId) external view returns (Booking memory) {
        StoredBooking storage b = _bookings[bookingId];
        return Booking({
            status: b.status,
            customer: b.customer,
            provider: b.provider,
            inviter: b.inviter,
            amount: b.amount,
            platformFee: b.platformFee,
            inviterFee: b.inviterFee,
            providerAmount: b.providerAmount,
            releaseTime: b.releaseTime,
            paidAt: b.paidAt
        });
    }

    function nonceUsed(uint256 nonce) external view returns (bool) {
        return _nonceUsed[nonce];
    }

    function owedBalance(address account) external view returns (uint256) {
        return _owed[account];
    }

    function totalOwed() external view returns (uint256) {
        return _totalOwed;
    }

    function feePolicy()
        external
        view
        returns (uint256 platformFeeBps, uint256 platformFeeWithInviterBps, uint256 inviterFeeBps)
    {
        return (_platformFeeBps, _platformFeeWithInviterBps, _inviterFeeBps);
    }

    function signer() external view returns (address) {
        return _signer;
    }

    function operator() external view returns (address) {
        return _operator;
    }

    /// @notice The treasury new bookings pay their fee to.
    function treasury() external view returns (address) {
        return _treasuries[_treasuries.length - 1];
    }

    /// @notice The treasury fixed at `bookingId`'s payment (zero if it was never paid).
    function bookingTreasury(bytes32 bookingId) external view returns (address) {
        StoredBooking storage b = _bookings[bookingId];
        if (b.status == BookingStatus.None) return address(0);
        return _treasuries[b.treasuryIndex];
    }

    function usdc() external view returns (address) {
        return address(_usdc);
    }

    /// @notice The EIP-712 digest the signer signs for a payment (lets off-chain code cross-check).
    function hashBookingAuthorization(BookingAuthorization calldata auth)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    BOOKING_AUTHORIZATION_TYPEHASH,
                    auth.bookingId,
                    auth.customer,
                    auth.provider,
                    auth.inviter,
                    auth.amount,
                    auth.platformFeeRate,
                    auth.inviterFeeRate,
                    auth.releaseTime,
                    auth.expiry,
                    auth.nonce
                )
            )
        );
    }

    /// @notice The EIP-712 digest the signer signs for a cancellation.
    function hashCancellationAuthorization(CancellationAuthorization calldata auth)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    CANCELLATION_AUTHORIZATION_TYPEHASH,
                    auth.bookingId,
                    auth.customerAmount,
                    auth.providerAmount,
                    auth.platformAmount,
                    auth.inviterAmount,
                    keccak256(bytes(auth.reason)),
                    auth.expiry,
                    auth.nonce
                )
            )
        );
    }

    // ------------------------------------------------------------------ administration

    /// @notice Sets the fee policy; each booking's total fee stays within MAX_TOTAL_FEE_BPS.
    function setFeePolicy(
        uint256 platformFeeBps,
        uint256 platformFeeWithInviterBps,
        uint256 inviterFeeBps
    ) external onlyOwner {
        _setFeePolicy(platformFeeBps, platformFeeWithInviterBps, inviterFeeBps);
    }

    function setSigner(address newSigner) external onlyOwner {
        _setSigner(newSigner);
    }

    function setOperator(address newOperator) external onlyOwner {
        _setOperator(newOperator);
    }

    /// @notice Sets the treasury for bookings paid from now on; escrowed ones keep theirs.
    function setTreasury(address newTreasury) external onlyOwner {
        _setTreasury(newTreasury);
    }

    /// @notice Disables the signer at once: every payment and cancellation authorization is
    /// refused until the owner sets a new signer (through the timelock). Moves no money;
    /// completion, emergency refunds and withdrawals go on. The incident response to a leaked
    /// signer key, which must not wait for the timelock's delay.
    function revokeSigner() external {
        if (msg.sender != owner() && msg.sender != _operator) revert NotAuthorized();
        emit SignerUpdated(_signer, address(0));
        _signer = address(0);
    }

    /// @notice Stops new payments only; completion, cancellation, refunds and withdrawals go on.
    /// Immediate for the operator: braking moves no money and must not wait.
    function pause() external {
        if (msg.sender != owner() && msg.sender != _operator) revert NotAuthorized();
        _pause();
    }

    /// @notice Owner only, so behind the timelock's delay: a brake that the operator key (or a
    /// thief holding it) could release at once would be no brake.
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @dev Disabled: without an owner a pause could never be lifted and no key rotated.
    function renounceOwnership() public view override onlyOwner {
        revert NotAuthorized();
    }

    // ------------------------------------------------------------------ internals

    /// @dev Every rule of a payment, for both ways of pulling the money: the authorization's
    /// window, amount, release time, parties, fee policy, the booking's state machine, the nonce
    /// and the signer's signature; then the pull (`transferFrom` on the customer's approval, or
    /// the customer's ERC-3009 authorization bound to this booking), measured by the balance.
    function _createAndPay(
        BookingAuthorization calldata auth,
        bytes calldata signature,
        TransferAuthorization memory transferAuth,
        bool withAuthorization
    ) private {
        _checkExpiry(auth.expiry);
        if (auth.amount == 0 || auth.amount > type(uint128).max) revert InvalidAmount();
        if (auth.releaseTime > type(uint64).max) revert InvalidAmount();
        // A release time already reached would let anyone complete the booking at once.
        if (auth.releaseTime <= block.timestamp) revert ReleaseTimeInPast();
        _checkParties(auth.customer, auth.provider, auth.inviter);
        (uint256 platformFee, uint256 inviterFee) = _checkFeeRates(auth);

        StoredBooking storage booking = _bookings[auth.bookingId];
        if (booking.status != BookingStatus.None) revert BookingAlreadyExists();
        _useNonce(auth.nonce);
        bytes32 digest = hashBookingAuthorization(auth);
        _checkSignature(digest, signature);

        booking.status = BookingStatus.Paid;
        booking.customer = auth.customer;
        booking.paidAt = uint64(block.timestamp);
        booking.provider = auth.provider;
        booking.releaseTime = uint64(auth.releaseTime);
        booking.treasuryIndex = uint32(_treasuries.length - 1);
        booking.inviter = auth.inviter;
        booking.amount = uint128(auth.amount);
        booking.platformFee = uint128(platformFee);
        booking.inviterFee = uint128(inviterFee);
        // The provider gets the remainder, so the three parts always sum to the amount.
        booking.providerAmount = uint128(auth.amount - platformFee - inviterFee);

        _pull(auth.customer, auth.amount, digest, transferAuth, withAuthorization);

        emit BookingCreatedAndPaid(
            auth.bookingId,
            auth.customer,
            auth.provider,
            auth.inviter,
            auth.amount,
            auth.platformFeeRate,
            auth.inviterFeeRate
        );
    }

    /// @dev Moves `amount` from `customer` into the escrow: on its approval, or on its ERC-3009
    /// authorization under `nonce`. Measures what arrived rather than trusting the token: a
    /// fee-on-transfer or otherwise misbehaving token must not leave the escrow short.
    function _pull(
        address customer,
        uint256 amount,
        bytes32 nonce,
        TransferAuthorization memory transferAuth,
        bool withAuthorization
    ) private {
        uint256 balanceBefore = _usdc.balanceOf(address(this));
        if (withAuthorization) {
            // Payer, payee, amount and nonce come from the booking authorization, never from the
            // caller: the customer's signature is good for this booking's payment only.
            IERC3009(address(_usdc)).receiveWithAuthorization(
                customer,
                address(this),
                amount,
                transferAuth.validAfter,
                transferAuth.validBefore,
                nonce,
                transferAuth.v,
                transferAuth.r,
                transferAuth.s
            );
        } else {
            _usdc.safeTransferFrom(customer, address(this), amount);
        }
        if (_usdc.balanceOf(address(this)) - balanceBefore != amount) revert TransferAmountMismatch();
    }

    function _checkParties(address customer, address provider, address inviter) private view {
        if (customer == address(0) || provider == address(0) || customer == provider) {
            revert InvalidParties();
        }
        if (inviter != address(0) && (inviter == customer || inviter == provider)) {
            revert InvalidParties();
        }
        if (customer == address(this) || provider == address(this) || inviter == address(this)) {
            revert InvalidParties();
        }
    }

    /// @dev The signed rates must equal the current policy; returns the fees for `auth.amount`.
    function _checkFeeRates(BookingAuthorization calldata auth)
        private
        view
        returns (uint256 platformFee, uint256 inviterFee)
    {
        if (auth.inviter == address(0)) {
            if (auth.platformFeeRate != _platformFeeBps || auth.inviterFeeRate != 0) {
                revert FeeRateMismatch();
            }
        } else if (
            auth.platformFeeRate != _platformFeeWithInviterBps || auth.inviterFeeRate != _inviterFeeBps
        ) {
            revert FeeRateMismatch();
        }
        platformFee = Math.mulDiv(auth.amount, auth.platformFeeRate, BPS_DENOMINATOR);
        inviterFee = Math.mulDiv(auth.amount, auth.inviterFeeRate, BPS_DENOMINATOR);
    }

    function _checkExpiry(uint256 expiry) private view {
        if (block.timestamp > expiry) revert AuthorizationExpired();
        if (expiry > block.timestamp + MAX_AUTH_TTL) revert AuthorizationTooLong();
    }

    function _checkReason(string calldata reason) private pure {
        if (bytes(reason).length > MAX_REASON_BYTES) revert ReasonTooLong();
    }

    function _takeOwed(address party) private returns (uint256 amount) {
        amount = _owed[party];
        if (amount == 0) revert InvalidAmount();
        _owed[party] = 0;
        _totalOwed -= amount;
    }

    function _useNonce(uint256 nonce) private {
        if (_nonceUsed[nonce]) revert NonceAlreadyUsed();
        _nonceUsed[nonce] = true;
    }

    function _checkSignature(bytes32 digest, bytes calldata signature) private view {
        // tryRecover rejects wrong lengths, high-s (malleable) and invalid v; all map to one error.
        // It never returns address(0) without an error, so a revoked (zero) signer matches nothing.
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != _signer) revert InvalidSignature();
    }

    /// @dev Pays `amount` to `recipient`, or credits it as owed when the token refuses the transfer.
    function _payOut(bytes32 bookingId, address recipient, uint256 amount) private {
        if (amount == 0) return;
        uint256 gasBefore = gasleft();
        if (_usdc.trySafeTransfer(recipient, amount)) return;
        // A call keeps at most 1/64 of the gas back; if no more than that is left the transfer
        // ran out of gas, which a caller could force to push a leg into "owed" on purpose.
        if (gasleft() <= gasBefore / 63) revert InsufficientGas();
        _owed[recipient] += amount;
        _totalOwed += amount;
        emit PaymentOwed(bookingId, recipient, amount);
    }

    function _setFeePolicy(uint256 platformFeeBps, uint256 platformFeeWithInviterBps, uint256 inviterFeeBps)
        private
    {
        if (
            platformFeeBps > MAX_TOTAL_FEE_BPS
                || platformFeeWithInviterBps + inviterFeeBps > MAX_TOTAL_FEE_BPS
        ) revert FeeAboveCap();
        _platformFeeBps = platformFeeBps;
        _platformFeeWithInviterBps = platformFeeWithInviterBps;
        _inviterFeeBps = inviterFeeBps;
        emit FeePolicyUpdated(platformFeeBps, platformFeeWithInviterBps, inviterFeeBps);
    }

    function _setSigner(address newSigner) private {
        if (newSigner == address(0)) revert ZeroAddress();
        emit SignerUpdated(_signer, newSigner);
        _signer = newSigner;
    }

    function _setOperator(address newOperator) private {
        if (newOperator == address(0)) revert ZeroAddress();
        emit OperatorUpdated(_operator, newOperator);
        _operator = newOperator;
    }

    function _setTreasury(address newTreasury) private {
        if (newTreasury == address(0)) revert ZeroAddress();
        uint256 count = _treasuries.length;
        if (count > type(uint32).max) revert TooManyTreasuries();
        emit TreasuryUpdated(count == 0 ? address(0) : _treasuries[count - 1], newTreasury);
        _treasuries.push(newTreasury);
    }
}
