"""Errors raised by the chain package.

    ChainError
    ├── ProviderError              a provider failed us; the client fails over and retries
    │   ├── ProviderUnavailable    connection refused/dropped, HTTP 5xx, bad response body
    │   ├── ProviderTimeout        no answer within the per-call timeout
    │   ├── RateLimited            HTTP 429 or a JSON-RPC rate-limit error
    │   ├── StaleHead              the provider's head stopped advancing while another's did
    │   └── WrongChain             the provider serves another chain id than configured
    ├── AllProvidersFailed         every attempt on every provider failed (carries the last error)
    ├── RpcError                   the node answered with a JSON-RPC error (not retried)
    │   ├── ExecutionReverted      eth_call / eth_estimateGas reverted (data + decoded custom error)
    │   └── LogQueryTooLarge       eth_getLogs range/result limit (suggested range when given)
    ├── EventDecodeError           a log is not one of the escrow's events or is malformed
    ├── InvalidReason              an on-chain reason that is not a reason code (free text)
    ├── TransactionError           an operator transaction did not end as expected
    │   ├── TransactionDropped     its nonce was used by a transaction we did not send
    │   ├── FeeCapExceeded         the gas price needs a max fee above the cap: not sent
    │   └── BookingStateError      the booking's on-chain state forbids the action
    ├── DeploymentError            deploy refused (e.g. MockUSDC on a non-local chain)
    └── DeploymentMismatch         chain id / contract domain differ from configuration
        └── WorldMismatch          the same, as chain/world_check's list of differences

Messages never carry private keys or provider URLs with credentials.
"""

from __future__ import annotations


class ChainError(Exception):
    """Base of every error raised by the chain package."""


class InvalidReason(ChainError, ValueError):
    """An on-chain reason that is not one of chain/reason_codes's codes: free text stays off chain."""


class ProviderError(ChainError):
    """A provider-level failure: worth retrying elsewhere."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.provider = provider


class ProviderUnavailable(ProviderError):
    """Connection refused or dropped, HTTP 5xx, or an unparseable response."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the per-call timeout."""


class RateLimited(ProviderError):
    """HTTP 429 or a JSON-RPC rate-limit error."""


class StaleHead(ProviderError):
    """The provider's head stopped advancing while another provider's moved on."""


class WrongChain(ProviderError):
    """The provider answers for a chain id other than the configured one (``chain_id``)."""

    def __init__(self, message: str, *, provider: str = "", chain_id: int | None = None) -> None:
        super().__init__(message, provider=provider)
        self.chain_id = chain_id


class AllProvidersFailed(ChainError):
    """Every attempt failed; ``last_error`` is the final provider error."""

    def __init__(self, method: str, attempts: int, last_error: ProviderError | None) -> None:
        detail = f": {last_error}" if last_error is not None else ""
        super().__init__(f"{method} failed on every provider after {attempts} attempts{detail}")
        self.method = method
        self.attempts = attempts
        self.last_error = last_error


class RpcError(ChainError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code
        self.rpc_message = message
        self.data = data


class ExecutionReverted(RpcError):
    """A call or gas estimate reverted; ``error_name`` is the decoded custom error if known."""

    def __init__(
        self,
        code: int,
        message: str,
        data: object = None,
        *,
        revert_data: bytes = b"",
        error_name: str | None = None,
        error_args: tuple[object, ...] = (),
    ) -> None:
        super().__init__(code, message, data)
        self.revert_data = revert_data
        self.error_name = error_name
        self.error_args = error_args

    def __str__(self) -> str:
        if self.error_name:
            return f"execution reverted: {self.error_name}{self.error_args!r}"
        return f"execution reverted: {self.rpc_message} (data 0x{self.revert_data.hex()})"


class LogQueryTooLarge(RpcError):
    """eth_getLogs refused the range or result size; the provider may suggest a smaller one."""

    def __init__(
        self,
        code: int,
        message: str,
        data: object = None,
        *,
        suggested_from_block: int | None = None,
        suggested_to_block: int | None = None,
    ) -> None:
        super().__init__(code, message, data)
        self.suggested_from_block = suggested_from_block
        self.suggested_to_block = suggested_to_block


class EventDecodeError(ChainError):
    """A log that is not one of the escrow's events, or whose payload is malformed."""


class TransactionError(ChainError):
    """An operator transaction did not end as expected."""


class TransactionDropped(TransactionError):
    """The nonce was consumed by a transaction this sender did not broadcast."""


class FeeCapExceeded(TransactionError):
    """Inclusion now needs a max fee per gas above the configured cap; nothing was signed.

    A TransactionError, so activities retry it with backoff like any send that did not happen.
    """

    def __init__(self, message: str, *, needed: int, cap: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.cap = cap


class BookingStateError(TransactionError):
    """The booking's on-chain state makes the requested action impossible."""


class DeploymentError(ChainError):
    """A deployment was refused or failed."""


class DeploymentMismatch(ChainError):
    """The chain or contract found does not match configuration: refuse to start."""


class WorldMismatch(DeploymentMismatch):
    """The chain differs from the settings (chain/world_check.py); one line names every difference."""

    def __init__(self, message: str, differences: tuple[object, ...]) -> None:
        super().__init__(message)
        self.differences = differences
