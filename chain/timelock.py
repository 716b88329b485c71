"""Binding of the escrow's OwnerTimelock: schedule an owner call, find it again, execute it.

Every owner call on the escrow is one timelock operation: ``schedule`` (public, with the delay),
then ``execute`` once ``getTimestamp(id)`` has passed. The salt makes each operation unique, so
the same call (an unpause after an earlier unpause) can be scheduled again; ``find_scheduled``
recovers a pending operation's fields from its ``CallScheduled`` and ``CallSalt`` logs, so the
execute step needs only the operation id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import BoundContract, ContractAbi
from chain.hexutil import address, hash32, to_bytes, to_hex

NO_PREDECESSOR = b"\x00" * 32
CALL_SCHEDULED_TOPIC = to_hex(
    keccak(text="CallScheduled(bytes32,uint256,address,uint256,bytes,bytes32,uint256)")
)
CALL_SALT_TOPIC = to_hex(keccak(text="CallSalt(bytes32,bytes32)"))


@cache
def timelock_abi() -> ContractAbi:
    """The OwnerTimelock ABI from the committed artifact (parsed once)."""
    return ContractAbi(load_artifact("OwnerTimelock").abi)


class OperationState(IntEnum):
    """TimelockController's ``OperationState``."""

    UNSET = 0
    WAITING = 1
    READY = 2
    DONE = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class OwnerOperation:
    """One call the timelock makes on ``target`` once its delay has passed."""

    target: str
    data: bytes
    salt: bytes
    predecessor: bytes = NO_PREDECESSOR
    value: int = 0


class OwnerTimelock:
    """Views and call data of one deployed OwnerTimelock."""

    def __init__(self, client: ChainClient, timelock_address: str) -> None:
        self.contract = BoundContract(client, timelock_address, timelock_abi())

    @property
    def address(self) -> str:
        return self.contract.address

    async def min_delay(self) -> int:
        (value,) = await self.contract.view("getMinDelay")
        return int(value)

    async def operation_id(self, op: OwnerOperation) -> str:
        (value,) = await self.contract.view(
            "hashOperation", address(op.target), op.value, op.data, op.predecessor, op.salt
        )
        return hash32(value)

    async def state(self, operation_id: str) -> OperationState:
        (value,) = await self.contract.view("getOperationState", to_bytes(operation_id))
        return OperationState(value)

    async def ready_at(self, operation_id: str) -> int:
        """Unix time from which the operation may execute (1 once done, 0 if unknown)."""
        (value,) = await self.contract.view("getTimestamp", to_bytes(operation_id))
        return int(value)

    async def is_proposer(self, account: str) -> bool:
        (role,) = await self.contract.view("PROPOSER_ROLE")
        (value,) = await self.contract.view("hasRole", role, address(account))
        return bool(value)

    def schedule_call(self, op: OwnerOperation, delay: int) -> bytes:
        return self.contract.abi.encode_call(
            "schedule", address(op.target), op.value, op.data, op.predecessor, op.salt, delay
        )

    def execute_call(self, op: OwnerOperation) -> bytes:
        return self.contract.abi.encode_call(
            "execute", address(op.target), op.value, op.data, op.predecessor, op.salt
        )

    async def find_scheduled(
        self, operation_id: str, *, from_block: int, to_block: int | str = "latest"
    ) -> OwnerOperation | None:
        """The operation ``operation_id`` as scheduled in ``[from_block, to_block]``, if found."""
        client = self.contract.client
        op_topic = hash32(operation_id)
        scheduled = await client.get_logs(
            from_block=from_block,
            to_block=to_block,
            address=self.address,
            topics=[CALL_SCHEDULED_TOPIC, op_topic],
        )
        if not scheduled:
            return None
        target, value, data, predecessor, _delay = abi_decode(
            ["address", "uint256", "bytes", "bytes32", "uint256"], to_bytes(scheduled[0]["data"])
        )
        salts = await client.get_logs(
            from_block=from_block,
            to_block=to_block,
            address=self.address,
            topics=[CALL_SALT_TOPIC, op_topic],
        )
        # The timelock logs CallSalt only for a non-zero salt.
        salt = to_bytes(salts[0]["data"]) if salts else NO_PREDECESSOR
        return OwnerOperation(
            target=address(target), data=data, salt=salt, predecessor=predecessor, value=value
        )
