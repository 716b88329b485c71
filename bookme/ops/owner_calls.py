"""Owner calls on the escrow: through its OwnerTimelock, or sent directly if an account owns it.

Through the timelock an owner call is scheduled (public, with the timelock's delay) and
executed in the same command when the delay is 0 (local chains); otherwise the command prints
when it becomes executable and the ``bookme owner-execute`` line that runs it then. The owner
account (``BOOKME_OWNER_*``; a multisig in production, see README) proposes and executes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from bookme.ops.errors import OpsError, Refused
from bookme.settings import Settings
from chain.contract import ContractAbi
from chain.errors import ExecutionReverted
from chain.escrow import EscrowReader
from chain.keys import TransactionKey
from chain.models import TransactionReceipt
from chain.sender import SenderConfig, TransactionSender
from chain.timelock import OperationState, OwnerOperation, OwnerTimelock


@dataclass(frozen=True, kw_only=True)
class OwnerCallResult:
    """What an owner call did: ran now (``executed``), or was scheduled to run at ``ready_at``."""

    executed: bool
    tx_hash: str
    operation_id: str | None = None
    ready_at: int | None = None
    scheduled_block: int | None = None


def _explained(exc: ExecutionReverted, *abis: ContractAbi) -> ExecutionReverted:
    for abi in abis:
        explained = abi.explain(exc)
        if explained.error_name is not None:
            return explained
    return exc


async def send_call(
    settings: Settings,
    escrow: EscrowReader,
    key: TransactionKey,
    *,
    to: str,
    data: bytes,
    what: str,
    abis: tuple[ContractAbi, ...],
) -> TransactionReceipt:
    """Send one call and wait for it; a revert is `Refused` with the contract's reason."""
    sender = TransactionSender(
        escrow.contract.client,
        key,
        chain_id=settings.chain_id,
        config=SenderConfig(confirmations=settings.confirmations),
    )
    try:
        _, receipt = await sender.send_and_wait(to=to, data=data)
    except ExecutionReverted as exc:
        raise Refused(
            f"the contract refused {what} from {key.address}: {_explained(exc, *abis)}"
        ) from None
    if not receipt.succeeded:
        raise Refused(f"{what} transaction {receipt.tx_hash} reverted")
    return receipt


async def owner_timelock(escrow: EscrowReader) -> OwnerTimelock | None:
    """The escrow's OwnerTimelock; None when an account (no code) owns it directly."""
    owner = await escrow.owner()
    if not await escrow.contract.client.get_code(owner):
        return None
    return OwnerTimelock(escrow.contract.client, owner)


async def owner_call(
    settings: Settings, escrow: EscrowReader, key: TransactionKey, function: str, *args: object
) -> OwnerCallResult:
    """Run ``function(*args)`` on the escrow as its owner, through the timelock if it has one."""
    escrow_abi = escrow.contract.abi
    data = escrow_abi.encode_call(function, *args)
    timelock = await owner_timelock(escrow)
    if timelock is None:
        receipt = await send_call(
            settings, escrow, key, to=escrow.address, data=data, what=function, abis=(escrow_abi,)
        )
        return OwnerCallResult(executed=True, tx_hash=receipt.tx_hash)
    abis = (escrow_abi, timelock.contract.abi)
    # A fresh salt per call: the same call (a second unpause) is a new operation.
    op = OwnerOperation(target=escrow.address, data=data, salt=os.urandom(32))
    delay = await timelock.min_delay()
    operation_id = await timelock.operation_id(op)
    scheduled = await send_call(
        settings,
        escrow,
        key,
        to=timelock.address,
        data=timelock.schedule_call(op, delay),
        what=f"scheduling {function} on timelock {timelock.address}",
        abis=abis,
    )
    if delay == 0:
        executed = await send_call(
            settings,
            escrow,
            key,
            to=timelock.address,
            data=timelock.execute_call(op),
            what=f"{function} through timelock {timelock.address}",
            abis=abis,
        )
        return OwnerCallResult(executed=True, tx_hash=executed.tx_hash, operation_id=operation_id)
    return OwnerCallResult(
        executed=False,
        tx_hash=scheduled.tx_hash,
        operation_id=operation_id,
        ready_at=await timelock.ready_at(operation_id),
        scheduled_block=scheduled.block_number,
    )


def report_scheduled(result: OwnerCallResult, what: str, out: IO[str]) -> None:
    """Tell the operator when a scheduled owner call can run, and the command that runs it."""
    if result.ready_at is None or result.scheduled_block is None:
        raise ValueError("report_scheduled needs a scheduled (not executed) owner call")
    when = datetime.fromtimestamp(result.ready_at, UTC).isoformat(timespec="seconds")
    out.write(
        f"{what} scheduled on the owner timelock as operation {result.operation_id} "
        f"(tx {result.tx_hash}); it can be executed from {when} (chain time).\n"
        f"Then run: bookme owner-execute {result.operation_id} "
        f"--from-block {result.scheduled_block}\n"
        "Until then anyone can see it on chain, and the owner can cancel it on the timelock.\n"
    )


async def owner_execute(
    settings: Settings,
    escrow: EscrowReader,
    key: TransactionKey,
    operation_id: str,
    *,
    from_block: int,
) -> OwnerCallResult:
    """Execute the scheduled timelock operation ``operation_id`` once its delay has passed."""
    timelock = await owner_timelock(escrow)
    if timelock is None:
        raise OpsError(f"escrow {escrow.address} is owned by an account, not a timelock")
    state = await timelock.state(operation_id)
    if state is OperationState.UNSET:
        raise OpsError(f"no operation {operation_id} on timelock {timelock.address}")
    if state is OperationState.DONE:
        raise Refused(f"operation {operation_id} was already executed")
    if state is OperationState.WAITING:
        ready_at = await timelock.ready_at(operation_id)
        when = datetime.fromtimestamp(ready_at, UTC).isoformat(timespec="seconds")
        raise Refused(f"operation {operation_id} is not ready: it can be executed from {when}")
    op = await timelock.find_scheduled(operation_id, from_block=from_block)
    if op is None:
        raise OpsError(
            f"operation {operation_id} is pending but its CallScheduled log is not at or after "
            f"block {from_block}: pass the --from-block the schedule step printed"
        )
    receipt = await send_call(
        settings,
        escrow,
        key,
        to=timelock.address,
        data=timelock.execute_call(op),
        what=f"operation {operation_id} on timelock {timelock.address}",
        abis=(escrow.contract.abi, timelock.contract.abi),
    )
    return OwnerCallResult(executed=True, tx_hash=receipt.tx_hash, operation_id=operation_id)
