"""``bookme pause|unpause|rotate-signer|revoke-signer|owner-execute``: escrow admin transactions.

Who may call what (contracts/BookingEscrow.sol): ``pause`` and ``revokeSigner`` the operator
(or owner), at once, since they move no money; ``unpause`` and ``setSigner`` the owner only,
which is the escrow's OwnerTimelock: the owner key schedules them and they run after its delay
(at once when the delay is 0, else via ``owner-execute``; bookme/ops/owner_calls.py). Keys come
from Settings or a file and are never printed; only their addresses are.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from pydantic import SecretStr

from bookme.ops.deps import escrow_reader
from bookme.ops.errors import OpsError, Refused
from bookme.ops.owner_calls import owner_call, owner_execute, report_scheduled
from bookme.settings import Settings, SettingsError
from chain.errors import ExecutionReverted
from chain.escrow import EscrowReader
from chain.keys import InvalidKeyError, TransactionKey
from chain.sender import SenderConfig, TransactionSender


def _key(secret: SecretStr | None, what: str, setting: str) -> TransactionKey:
    if secret is None:
        raise OpsError(
            f"no {what} key: set BOOKME_{setting}_KEY_FILE (or BOOKME_{setting}_PRIVATE_KEY)"
        )
    try:
        return TransactionKey(secret)
    except InvalidKeyError:
        raise OpsError(f"the configured {what} key is malformed") from None


def _owner_key(settings: Settings) -> TransactionKey:
    try:
        return _key(settings.owner_key(), "contract owner", "OWNER")
    except SettingsError as exc:
        raise OpsError(str(exc)) from None


def operator_key(settings: Settings) -> TransactionKey:
    """The operator key (auto-complete, emergency refunds)."""
    try:
        return _key(settings.operator_key(), "operator", "OPERATOR")
    except SettingsError as exc:
        raise OpsError(str(exc)) from None


def _pauser_key(settings: Settings) -> TransactionKey:
    """The operator key (usually at hand on the workers), else the owner key."""
    try:
        operator = settings.operator_key()
        if operator is not None:
            return _key(operator, "operator", "OPERATOR")
        return _key(settings.owner_key(), "operator or owner", "OPERATOR")
    except SettingsError as exc:
        raise OpsError(str(exc)) from None


async def _send(
    settings: Settings, escrow: EscrowReader, key: TransactionKey, function: str, *args: object
) -> str:
    """Send one contract call and wait for it; a revert is `Refused` with the contract's reason."""
    sender = TransactionSender(
        escrow.contract.client,
        key,
        chain_id=settings.chain_id,
        config=SenderConfig(confirmations=settings.confirmations),
    )
    abi = escrow.contract.abi
    try:
        _, receipt = await sender.send_and_wait(
            to=escrow.address, data=abi.encode_call(function, *args)
        )
    except ExecutionReverted as exc:
        raise Refused(
            f"the contract refused {function} from {key.address}: {abi.explain(exc)}"
        ) from None
    if not receipt.succeeded:
        raise Refused(f"{function} transaction {receipt.tx_hash} reverted")
    return receipt.tx_hash


async def set_paused(settings: Settings, *, paused: bool, out: IO[str]) -> int:
    """Pause (stops new payments only) or unpause the escrow."""
    key = _pauser_key(settings) if paused else _owner_key(settings)
    async with escrow_reader(settings) as escrow:
        if await escrow.paused() == paused:
            out.write(f"escrow {escrow.address} is already {'paused' if paused else 'unpaused'}\n")
            return 0
        if paused:
            tx = await _send(settings, escrow, key, "pause")
        else:
            result = await owner_call(settings, escrow, key, "unpause")
            if not result.executed:
                report_scheduled(result, f"unpausing escrow {escrow.address}", out)
                return 0
            tx = result.tx_hash
        now = await escrow.paused()
    out.write(f"escrow {escrow.address} paused={now} (tx {tx}, sent by {key.address})\n")
    return 0


def read_key_file(path: Path) -> TransactionKey:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OpsError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        return TransactionKey(text)
    except InvalidKeyError:
        raise OpsError(f"the key file {path} does not hold a private key") from None


async def rotate_signer(settings: Settings, *, new_key_file: Path, out: IO[str]) -> int:
    """Point the contract's signer at the key in ``new_key_file`` (the owner sends setSigner)."""
    new_signer = read_key_file(new_key_file).address
    owner = _owner_key(settings)
    async with escrow_reader(settings) as escrow:
        previous = await escrow.signer()
        if previous.lower() == new_signer.lower():
            out.write(f"the contract's signer already is {new_signer}\n")
        else:
            result = await owner_call(settings, escrow, owner, "setSigner", new_signer)
            if not result.executed:
                report_scheduled(result, f"setSigner({new_signer})", out)
                out.write(
                    "Once it has executed: on every worker set BOOKME_SIGNER_KEY_FILE="
                    f"{new_key_file.resolve()} and restart them. Meanwhile `bookme revoke-signer` "
                    "stops a leaked signer key at once.\n"
                )
                return 0
            tx = result.tx_hash
            current = await escrow.signer()
            if current.lower() != new_signer.lower():
                raise OpsError(f"setSigner mined ({tx}) but the contract reports signer {current}")
            out.write(
                f"signer rotated on escrow {escrow.address}: {previous} -> {current} (tx {tx})\n"
            )
    out.write(
        "Now, on every worker: set BOOKME_SIGNER_KEY_FILE="
        f"{new_key_file.resolve()} (and unset BOOKME_SIGNER_PRIVATE_KEY), then restart the workers.\n"
        "Until they restart, authorizations they sign with the old key are refused by the contract;\n"
        "customers holding an unused old authorization must request a new one.\n"
    )
    return 0


async def revoke_signer(settings: Settings, *, out: IO[str]) -> int:
    """Disable the contract's signer now (operator key): every authorization is refused."""
    key = _pauser_key(settings)
    async with escrow_reader(settings) as escrow:
        previous = await escrow.signer()
        if int(previous, 16) == 0:
            out.write(f"escrow {escrow.address} has no signer (already revoked)\n")
            return 0
        tx = await _send(settings, escrow, key, "revokeSigner")
    out.write(
        f"signer {previous} revoked on escrow {escrow.address} (tx {tx}, sent by {key.address}).\n"
        "Every payment and cancellation authorization is refused now; completion, emergency "
        "refunds and withdrawals go on. Set a new signer with `bookme rotate-signer` (owner, "
        "through the timelock's delay).\n"
    )
    return 0


async def execute_owner_operation(
    settings: Settings, *, operation_id: str, from_block: int, out: IO[str]
) -> int:
    """Execute an owner call scheduled on the timelock, once its delay has passed."""
    owner = _owner_key(settings)
    async with escrow_reader(settings) as escrow:
        result = await owner_execute(settings, escrow, owner, operation_id, from_block=from_block)
    out.write(
        f"operation {operation_id} executed on escrow {escrow.address} (tx {result.tx_hash})\n"
    )
    return 0
