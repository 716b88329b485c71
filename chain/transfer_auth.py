"""Relayed payment (issue #19): the customer pays a booking with one USDC ERC-3009 signature.

The binding. ``createAndPayBookingWithAuthorization(auth, booking_signature, transfer_auth)``
takes the signer's ``BookingAuthorization`` exactly as the direct path does, plus the
customer's ERC-3009 ``ReceiveWithAuthorization`` signature. The escrow calls the token's
``receiveWithAuthorization`` with every field but the window taken from ``auth``::

    from  = auth.customer
    to    = the escrow (only ``to`` may redeem a ReceiveWithAuthorization)
    value = auth.amount
    nonce = transfer_nonce(escrow_domain, auth)  == the contract's hashBookingAuthorization(auth),
            the booking authorization's EIP-712 digest (booking id, customer, amount, nonce,
            chain id and escrow address all in it)

so a transfer signature pays that one booking authorization and nothing else, and a booking
authorization cannot be paired with any other transfer. Only ``validAfter``/``validBefore``
(the token accepts ``validAfter < now < validBefore``) and v, r, s travel in the contract's
``TransferAuthorization``. Every rule of the direct path still applies (state machine, fee
policy, expiry, release time, pause, nonces); any account may submit, so the relayer pays gas
and the customer needs USDC only. The event is the same ``BookingCreatedAndPaid``.

For a relayer, in order::

    token = await read_token_domain(client, usdc)      # once: USDC's name differs per chain
    transfer = receive_authorization(escrow_domain, auth)   # window defaults to auth's expiry
    receive_typed_data(token, transfer)                # JSON for eth_signTypedData_v4
    parts = transfer_authorization(token, transfer, wallet_signature)  # 4xx if not the customer
    tx = relayed_payment_tx(escrow, auth, booking_signature, parts, relayer=...)
    sim = await simulate_relayed_payment(client, tx)   # before paying gas: ok + gas, or why not

``sign_receive_authorization`` signs with a local key (tests, demo), as a wallet would.

Errors::

    ValueError
     └── TypedDataError (chain/eip712.py)
          ├── SignatureError (chain/signature_parts.py)   not a 65-byte low-s signature
          │    └── TransferSignatureError   a good signature, not by the booking's customer
          └── InvalidPrivateKeyError (chain/signing.py)   the key is unusable (never echoed)
    DeploymentMismatch (chain/errors.py)  the token's DOMAIN_SEPARATOR disagrees with its domain
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_account import Account
from pydantic import SecretStr

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import BoundContract, ContractAbi
from chain.eip712 import (
    RECEIVE_WITH_AUTHORIZATION_TYPE,
    BookingAuthorization,
    Eip712Domain,
    ReceiveWithAuthorization,
)
from chain.errors import DeploymentMismatch, ExecutionReverted
from chain.escrow import escrow_abi
from chain.hexutil import address, to_bytes, to_hex
from chain.signature_parts import SignatureError, recover_signer, split_signature
from chain.signing import (
    InvalidPrivateKeyError,
    _typed_data,
    booking_authorization_digest,
    typed_data_digest,
)

RELAYED_PAYMENT_FUNCTION = "createAndPayBookingWithAuthorization"


class TransferSignatureError(SignatureError):
    """A well-formed transfer signature that is not the payer's (a 4xx at the API)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TransferAuthorization:
    """The contract's ``TransferAuthorization``: the window and the customer's v, r, s."""

    valid_after: int
    valid_before: int
    v: int
    r: str
    s: str

    @classmethod
    def from_signature(
        cls, transfer: ReceiveWithAuthorization, signature: str | bytes
    ) -> TransferAuthorization:
        """``transfer``'s window with ``signature`` split, unchecked (``transfer_authorization``
        also checks that the payer signed)."""
        parts = split_signature(signature)
        return cls(
            valid_after=transfer.valid_after,
            valid_before=transfer.valid_before,
            v=parts.v,
            r=parts.r,
            s=parts.s,
        )

    def as_abi_tuple(self) -> tuple[int, int, int, bytes, bytes]:
        """The struct in ABI order, as the relayed function's third argument."""
        return (self.valid_after, self.valid_before, self.v, to_bytes(self.r), to_bytes(self.s))


@dataclass(frozen=True, kw_only=True, slots=True)
class SignedTransfer:
    """A ``ReceiveWithAuthorization`` with the payer's signature over its digest in the token's
    domain."""

    transfer: ReceiveWithAuthorization
    domain: Eip712Domain
    digest: str
    signature: str
    """0x-hex of the 65-byte signature r || s || v."""

    def for_escrow(self) -> TransferAuthorization:
        return transfer_authorization(self.domain, self.transfer, self.signature)


@dataclass(frozen=True, kw_only=True, slots=True)
class RelaySimulation:
    """What ``eth_call`` says a relayed payment would do now: ok with a gas estimate, or the
    revert (``error_name`` a custom error, or ``"Error"`` with USDC's message as the argument)."""

    ok: bool
    gas: int | None = None
    error_name: str | None = None
    error_args: tuple[Any, ...] = ()
    revert_data: str = "0x"

    @property
    def reason(self) -> str:
        """One line for logs and API errors: the token's message or the escrow's error name."""
        if self.ok:
            return "ok"
        if self.error_name == "Error" and self.error_args:
            return str(self.error_args[0])
        return self.error_name or f"unknown revert {self.revert_data}"


# ------------------------------------------------------------------ the binding


def transfer_nonce(escrow_domain: Eip712Domain, auth: BookingAuthorization) -> str:
    """The ERC-3009 nonce a relayed payment of ``auth`` must carry: the booking authorization's
    EIP-712 digest in the escrow's domain (the contract's ``hashBookingAuthorization``)."""
    return to_hex(booking_authorization_digest(escrow_domain, auth))


def receive_authorization(
    escrow_domain: Eip712Domain,
    auth: BookingAuthorization,
    *,
    valid_after: int = 0,
    valid_before: int | None = None,
) -> ReceiveWithAuthorization:
    """The transfer the customer signs to pay ``auth`` through the escrow of ``escrow_domain``.

    ``valid_before`` defaults to ``auth.expiry + 1``: the token wants ``now < validBefore`` and
    the escrow ``now <= expiry``, so the transfer lives exactly as long as the authorization.
    """
    return ReceiveWithAuthorization(
        payer=auth.customer,
        payee=escrow_domain.verifying_contract,
        value=auth.amount,
        valid_after=valid_after,
        valid_before=auth.expiry + 1 if valid_before is None else valid_before,
        nonce=transfer_nonce(escrow_domain, auth),
    )


# ------------------------------------------------------------------ typed data and signatures


def token_domain(*, chain_id: int, token: str, name: str = "USD Coin") -> Eip712Domain:
    """USDC's EIP-712 domain (version "2"); its name is the token's ``name()``, which differs
    between deployments (Base: "USD Coin"; Base Sepolia: "USDC"), so prefer
    ``read_token_domain``."""
    return Eip712Domain(chain_id=chain_id, verifying_contract=token, name=name, version="2")


def receive_typed_data(domain: Eip712Domain, transfer: ReceiveWithAuthorization) -> dict[str, Any]:
    """Full EIP-712 JSON of ``transfer`` in the token's ``domain`` (``eth_signTypedData_v4``)."""
    return _typed_data(
        domain, "ReceiveWithAuthorization", RECEIVE_WITH_AUTHORIZATION_TYPE, transfer.as_message()
    )


def receive_digest(domain: Eip712Domain, transfer: ReceiveWithAuthorization) -> bytes:
    """The digest the token recovers the payer from."""
    return typed_data_digest(domain, transfer.struct_hash())


def sign_receive_authorization(
    domain: Eip712Domain, transfer: ReceiveWithAuthorization, private_key: SecretStr | str | bytes
) -> SignedTransfer:
    """Sign ``transfer`` with a local key from its typed-data JSON, as a wallet would."""
    if isinstance(private_key, SecretStr):
        private_key = private_key.get_secret_value()
    try:
        account = Account.from_key(private_key)
    except Exception:
        # eth-keys messages may quote the key; replace them with one that cannot.
        raise InvalidPrivateKeyError("private key is not a valid secp256k1 key") from None
    signed = account.sign_typed_data(full_message=receive_typed_data(domain, transfer))
    return SignedTransfer(
        transfer=transfer,
        domain=domain,
        digest=to_hex(bytes(signed.message_hash)),
        signature=to_hex(bytes(signed.signature)),
    )


def recover_payer(
    domain: Eip712Domain, transfer: ReceiveWithAuthorization, signature: str | bytes
) -> str:
    """The address that signed ``transfer`` in ``domain`` (checksummed)."""
    return recover_signer(receive_digest(domain, transfer), signature)


def transfer_authorization(
    domain: Eip712Domain, transfer: ReceiveWithAuthorization, signature: str | bytes
) -> TransferAuthorization:
    """The contract's ``TransferAuthorization`` for ``transfer``, refused unless ``signature``
    is the payer's (so a relayer never pays gas for a signature the token would reject)."""
    signer = recover_payer(domain, transfer, signature)
    if signer != transfer.payer:
        raise TransferSignatureError(
            f"transfer signed by {signer}, not by the booking's customer {transfer.payer}"
        )
    return TransferAuthorization.from_signature(transfer, signature)


# ------------------------------------------------------------------ the relayed transaction


def relayed_payment_calldata(
    auth: BookingAuthorization, booking_signature: str | bytes, transfer: TransferAuthorization
) -> bytes:
    """Call data of ``createAndPayBookingWithAuthorization(auth, bookingSig, transferAuth)``."""
    return escrow_abi().encode_call(
        RELAYED_PAYMENT_FUNCTION,
        auth.as_abi_tuple(),
        to_bytes(booking_signature),
        transfer.as_abi_tuple(),
    )


def relayed_payment_tx(
    escrow: str,
    auth: BookingAuthorization,
    booking_signature: str | bytes,
    transfer: TransferAuthorization,
    *,
    relayer: str,
) -> dict[str, Any]:
    """The unsigned call ``relayer`` sends (from, to, data); gas and fees are the sender's."""
    return {
        "from": address(relayer),
        "to": address(escrow),
        "data": relayed_payment_calldata(auth, booking_signature, transfer),
    }


async def simulate_relayed_payment(
    client: ChainClient, tx: dict[str, Any], *, block: int | str = "latest"
) -> RelaySimulation:
    """``eth_call`` the relayed payment (and estimate its gas if it would succeed)."""
    try:
        await client.call(tx, block)
        gas = await client.estimate_gas(tx)
    except ExecutionReverted as exc:
        explained = _explain(exc)
        return RelaySimulation(
            ok=False,
            error_name=explained.error_name,
            error_args=explained.error_args,
            revert_data=to_hex(explained.revert_data),
        )
    return RelaySimulation(ok=True, gas=gas)


# ------------------------------------------------------------------ the token on chain


_TOKEN_ABI: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "name": "name",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
    {
        "type": "function",
        "name": "version",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
    {
        "type": "function",
        "name": "DOMAIN_SEPARATOR",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "bytes32"}],
    },
    {
        "type": "function",
        "name": "authorizationState",
        "stateMutability": "view",
        "inputs": [
            {"name": "authorizer", "type": "address"},
            {"name": "nonce", "type": "bytes32"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
    },
)


@cache
def token_abi() -> ContractAbi:
    """The ERC-3009 views of USDC (FiatTokenV2) this module reads."""
    return ContractAbi(_TOKEN_ABI)


async def read_token_domain(client: ChainClient, token: str) -> Eip712Domain:
    """USDC's EIP-712 domain from the chain: its ``name()``, ``version()`` and the chain id,
    checked against the token's own ``DOMAIN_SEPARATOR()``."""
    contract = BoundContract(client, token, token_abi())
    (name,) = await contract.view("name")
    (version,) = await contract.view("version")
    (separator,) = await contract.view("DOMAIN_SEPARATOR")
    domain = Eip712Domain(
        chain_id=await client.chain_id(),
        verifying_contract=contract.address,
        name=name,
        version=version,
    )
    if domain.separator() != bytes(separator):
        raise DeploymentMismatch(
            f"token {contract.address}: DOMAIN_SEPARATOR differs from the one of name {name!r}, "
            f"version {version!r}, chain {domain.chain_id}; not an ERC-3009 USDC"
        )
    return domain


async def authorization_used(
    client: ChainClient, token: str, transfer: ReceiveWithAuthorization
) -> bool:
    """Whether the payer has already used or cancelled ``transfer``'s nonce on the token."""
    contract = BoundContract(client, token, token_abi())
    (used,) = await contract.view("authorizationState", transfer.payer, to_bytes(transfer.nonce))
    return bool(used)


# ------------------------------------------------------------------ internals


@cache
def _mock_token_abi() -> ContractAbi:
    return ContractAbi(load_artifact("MockUSDC").abi)


def _explain(exc: ExecutionReverted) -> ExecutionReverted:
    # The escrow's own errors first; then the token's (its reverts bubble up through the escrow).
    explained = escrow_abi().explain(exc)
    return explained if explained.error_name else _mock_token_abi().explain(exc)


__all__ = [
    "RELAYED_PAYMENT_FUNCTION",
    "RelaySimulation",
    "SignedTransfer",
    "TransferAuthorization",
    "TransferSignatureError",
    "authorization_used",
    "read_token_domain",
    "receive_authorization",
    "receive_digest",
    "receive_typed_data",
    "recover_payer",
    "relayed_payment_calldata",
    "relayed_payment_tx",
    "sign_receive_authorization",
    "simulate_relayed_payment",
    "token_domain",
    "transfer_authorization",
    "transfer_nonce",
]
