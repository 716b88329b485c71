"""ABI encoding of calls and decoding of results and custom errors, with eth-abi (no web3 provider)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from eth_utils.crypto import keccak

from chain.client import ChainClient
from chain.errors import ExecutionReverted
from chain.hexutil import address, to_bytes

_ERROR_STRING = keccak(text="Error(string)")[:4]
_PANIC = keccak(text="Panic(uint256)")[:4]


@dataclass(frozen=True, slots=True)
class _Function:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class ContractAbi:
    """One contract's ABI: call data for functions, results, and custom error names."""

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self._functions: dict[str, _Function] = {}
        self._errors: dict[bytes, tuple[str, tuple[str, ...]]] = {}
        self._constructor_inputs: tuple[str, ...] = ()
        for entry in abi:
            kind = entry.get("type")
            if kind == "function":
                name = entry["name"]
                if name in self._functions:
                    raise ValueError(f"overloaded function {name} is not supported")
                self._functions[name] = _Function(
                    selector=function_abi_to_4byte_selector(entry),  # type: ignore[arg-type]
                    inputs=tuple(get_abi_input_types(entry)),  # type: ignore[arg-type]
                    outputs=tuple(get_abi_output_types(entry)),  # type: ignore[arg-type]
                )
            elif kind == "error":
                types = tuple(get_abi_input_types(entry))  # type: ignore[arg-type]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                self._errors[selector] = (entry["name"], types)
            elif kind == "constructor":
                self._constructor_inputs = tuple(get_abi_input_types(entry))  # type: ignore[arg-type]

    def has_function(self, name: str) -> bool:
        return name in self._functions

    def encode_call(self, name: str, *args: Any) -> bytes:
        """Selector + ABI-encoded arguments."""
        function = self._functions[name]
        return function.selector + abi_encode(function.inputs, args)

    def decode_result(self, name: str, data: bytes) -> tuple[Any, ...]:
        """The function's outputs (a struct output is one nested tuple)."""
        return tuple(abi_decode(self._functions[name].outputs, data))

    def encode_constructor_args(self, *args: Any) -> bytes:
        """The ABI-encoded constructor arguments (what an explorer asks for to verify)."""
        return abi_encode(self._constructor_inputs, args)

    def encode_deploy(self, bytecode: str | bytes, *args: Any) -> bytes:
        """Creation code followed by the ABI-encoded constructor arguments."""
        return to_bytes(bytecode) + self.encode_constructor_args(*args)

    def decode_error(self, revert_data: bytes) -> tuple[str, tuple[Any, ...]] | None:
        """(name, args) of a custom error, ``Error(string)`` or ``Panic(uint256)``; None if unknown."""
        if len(revert_data) < 4:
            return None
        selector, payload = revert_data[:4], revert_data[4:]
        try:
            if selector == _ERROR_STRING:
                return "Error", tuple(abi_decode(("string",), payload))
            if selector == _PANIC:
                return "Panic", tuple(abi_decode(("uint256",), payload))
            known = self._errors.get(selector)
            if known is None:
                return None
            return known[0], tuple(abi_decode(known[1], payload))
        except Exception:  # malformed payload after a known selector: report the name only
            known = self._errors.get(selector)
            return (known[0], ()) if known else None

    def explain(self, exc: ExecutionReverted) -> ExecutionReverted:
        """The same revert with the custom error decoded from this ABI (if it is one of ours)."""
        if exc.error_name is not None:
            return exc
        decoded = self.decode_error(exc.revert_data)
        if decoded is None:
            return exc
        return ExecutionReverted(
            exc.code,
            exc.rpc_message,
            exc.data,
            revert_data=exc.revert_data,
            error_name=decoded[0],
            error_args=decoded[1],
        )


class BoundContract:
    """A deployed contract: view calls through a `ChainClient`, reverts decoded."""

    def __init__(self, client: ChainClient, contract_address: str, abi: ContractAbi) -> None:
        self.client = client
        self.address = address(contract_address)
        self.abi = abi

    async def view(self, name: str, *args: Any, block: int | str = "latest") -> tuple[Any, ...]:
        """eth_call of a view function; its decoded outputs."""
        data = self.abi.encode_call(name, *args)
        try:
            result = await self.client.call({"to": self.address, "data": data}, block)
        except ExecutionReverted as exc:
            raise self.abi.explain(exc) from None
        if not result:
            raise ExecutionReverted(-1, f"{name}: empty result (no contract at {self.address}?)")
        return self.abi.decode_result(name, result)
