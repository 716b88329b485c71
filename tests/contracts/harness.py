"""Deploys MockUSDC + BookingEscrow on a test anvil and drives them as the parties would."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import SecretStr
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from bookme.embedded.anvil import AnvilNode, DevAccount
from bookme.settings import Settings
from chain.artifacts import load_artifact
from chain.eip712 import (
    ZERO_ADDRESS,
    BookingAuthorization,
    CancellationAuthorization,
    Eip712Domain,
    ReceiveWithAuthorization,
    chain_booking_id,
)
from chain.signing import sign_booking_authorization, sign_cancellation_authorization
from chain.transfer_auth import (
    TransferAuthorization,
    receive_authorization,
    sign_receive_authorization,
    token_domain,
)

USDC = 10**6
CUSTOMER_FUNDS = 1_000_000 * USDC
DEFAULT_AMOUNT = 100 * USDC
STATUS_NONE, STATUS_PAID, STATUS_COMPLETED, STATUS_CANCELLED = range(4)
RELEASE_DELAY = 2 * 3600
AUTH_TTL = 300
# A customer of the relayed path: USDC only, never any ETH (not one of anvil's funded accounts).
WALLET_ONLY_KEY = "0x" + keccak(text="bookme customer holding USDC and no ETH").hex()


@dataclass(frozen=True)
class Roles:
    """One anvil dev account per role, so every balance can be asserted separately."""

    owner: DevAccount
    signer: DevAccount
    operator: DevAccount
    treasury: DevAccount
    customer: DevAccount
    provider: DevAccount
    inviter: DevAccount
    stranger: DevAccount
    other: DevAccount


def error_selector(abi: tuple[dict[str, Any], ...], name: str) -> str:
    """0x-hex selector of custom error ``name`` as declared in the ABI."""
    for entry in abi:
        if entry["type"] == "error" and entry["name"] == name:
            types = ",".join(arg["type"] for arg in entry["inputs"])
            return "0x" + keccak(text=f"{name}({types})")[:4].hex()
    raise AssertionError(f"no error {name} in the ABI")


class EscrowHarness:
    """A freshly deployed escrow with a funded customer who has approved it.

    ``erc20`` names the ERC-20 artifact the escrow holds (``HostileToken`` to misbehave).
    With ``owner_delay`` set, the escrow's owner is an ``OwnerTimelock`` with that delay whose
    proposer and executor is ``roles.owner``, as ``chain/deploy.py`` deploys it; otherwise
    ``roles.owner`` owns the escrow directly.
    """

    def __init__(
        self, node: AnvilNode, *, erc20: str = "MockUSDC", owner_delay: int | None = None
    ) -> None:
        self.node = node
        self.w3 = Web3(Web3.HTTPProvider(node.http_url))
        accounts = node.accounts
        self.roles = Roles(*accounts[:9])
        self.escrow_artifact = load_artifact("BookingEscrow")
        self.usdc_artifact = load_artifact(erc20)
        self._nonces = itertools.count(1)
        self._bookings = itertools.count(1)

        self.usdc = self._deploy(self.usdc_artifact)
        r = self.roles
        self.timelock: Contract | None = None
        if owner_delay is not None:
            self.timelock = self._deploy(
                load_artifact("OwnerTimelock"), owner_delay, [r.owner.address], [r.owner.address]
            )
        self.escrow = self._deploy(
            self.escrow_artifact,
            self.usdc.address,
            r.signer.address,
            r.operator.address,
            r.treasury.address,
            r.owner.address if self.timelock is None else self.timelock.address,
        )
        self.send(self.usdc.functions.mint(r.customer.address, CUSTOMER_FUNDS), r.customer)
        self.send(self.usdc.functions.approve(self.escrow.address, 2**256 - 1), r.customer)
        self.domain = Eip712Domain(chain_id=node.chain_id, verifying_contract=self.escrow.address)
        self.token_domain = token_domain(
            chain_id=node.chain_id, token=self.usdc.address, name=self.usdc.functions.name().call()
        )

    def _deploy(self, artifact: Any, *args: Any) -> Contract:
        factory = self.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
        tx = factory.constructor(*args).transact({"from": self.roles.owner.address})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        address = receipt["contractAddress"]
        assert address is not None
        return self.w3.eth.contract(address=address, abi=list(artifact.abi))

    # ------------------------------------------------------------------ chain helpers

    def send(self, call: Any, sender: DevAccount) -> TxReceipt:
        """Send ``call`` from ``sender`` (anvil's unlocked dev account) and require success."""
        tx = call.transact({"from": sender.address})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        return receipt

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel(self, seconds: int) -> None:
        """Move chain time forward and mine, so the next block is at least ``seconds`` later."""
        self.node.rpc("evm_increaseTime", seconds)
        self.node.rpc("evm_mine")

    def expect_revert(self, error_name: str, action: Callable[[], object]) -> None:
        """``action`` must revert with a custom error ``error_name`` of the escrow, the token or
        the timelock."""
        with pytest.raises(ContractCustomError) as caught:
            action()
        abi = self.escrow_artifact.abi + self.usdc_artifact.abi
        if not any(entry.get("name") == error_name for entry in abi):
            abi += load_artifact("OwnerTimelock").abi
        data = caught.value.data
        assert isinstance(data, str)
        assert data[:10] == error_selector(abi, error_name), (error_name, data)

    # ------------------------------------------------------------------ balances and state

    def balance(self, address: str) -> int:
        return int(self.usdc.functions.balanceOf(address).call())

    def balances(self) -> dict[str, int]:
        """Token balance of every party that can receive money from the escrow."""
        r = self.roles
        return {
            "customer": self.balance(r.customer.address),
            "provider": self.balance(r.provider.address),
            "inviter": self.balance(r.inviter.address),
            "treasury": self.balance(r.treasury.address),
            "operator": self.balance(r.operator.address),
            "stranger": self.balance(r.stranger.address),
            "escrow": self.balance(self.escrow.address),
        }

    def booking(self, booking_id: str) -> tuple[Any, ...]:
        return tuple(self.escrow.functions.getBooking(bytes.fromhex(booking_id[2:])).call())

    def events(self, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
        event = getattr(self.escrow.events, name)()
        # Other contracts' logs (the token's Transfer) are in the receipt too: skip them.
        return [dict(log["args"]) for log in event.process_receipt(receipt, errors=DISCARD)]

    def settings(self, *, database_url: str, **overrides: Any) -> Settings:
        """Service settings for this chain and escrow, with the harness's signer and operator."""
        r = self.roles
        fields: dict[str, Any] = {
            "database_url": database_url,
            "rpc_urls": [self.node.http_url],
            "chain_id": self.node.chain_id,
            "escrow_address": self.escrow.address,
            "signer_private_key": SecretStr(r.signer.private_key),
            "operator_private_key": SecretStr(r.operator.private_key),
            "confirmations": 0,
        }
        fields.update(overrides)
        return Settings(**fields)

    # ------------------------------------------------------------------ authorizations

    def new_booking_id(self) -> str:
        return chain_booking_id(f"00000000-0000-4000-8000-{next(self._bookings):012d}")

    def booking_auth(
        self, *, with_inviter: bool = False, amount: int = DEFAULT_AMOUNT, **overrides: Any
    ) -> BookingAuthorization:
        """A valid payment authorization under the default policy, with ``overrides`` applied."""
        r = self.roles
        now = self.now()
        fields: dict[str, Any] = {
            "booking_id": self.new_booking_id(),
            "customer": r.customer.address,
            "provider": r.provider.address,
            "inviter": r.inviter.address if with_inviter else ZERO_ADDRESS,
            "amount": amount,
            "platform_fee_rate": 500 if with_inviter else 1000,
            "inviter_fee_rate": 500 if with_inviter else 0,
            "release_time": now + RELEASE_DELAY,
            "expiry": now + AUTH_TTL,
            "nonce": next(self._nonces),
        }
        fields.update(overrides)
        return BookingAuthorization(**fields)

    def cancel_auth(self, booking_id: str, **overrides: Any) -> CancellationAuthorization:
        """A full-refund cancellation of ``booking_id`` with ``overrides`` applied."""
        amount = self.booking(booking_id)[4]
        fields: dict[str, Any] = {
            "booking_id": booking_id,
            "customer_amount": amount,
            "provider_amount": 0,
            "platform_amount": 0,
            "inviter_amount": 0,
            "reason": "customer_request",
            "expiry": self.now() + AUTH_TTL,
            "nonce": next(self._nonces),
        }
        fields.update(overrides)
        return CancellationAuthorization(**fields)

    def sign(
        self,
        auth: BookingAuthorization | CancellationAuthorization,
        *,
        key: str | None = None,
        domain: Eip712Domain | None = None,
    ) -> bytes:
        key = key or self.roles.signer.private_key
        domain = domain or self.domain
        if isinstance(auth, BookingAuthorization):
            signature = sign_booking_authorization(domain, auth, key).signature
        else:
            signature = sign_cancellation_authorization(domain, auth, key).signature
        return bytes.fromhex(signature[2:])

    # ------------------------------------------------------------------ contract calls

    def pay_call(self, auth: BookingAuthorization, signature: bytes | None = None) -> Any:
        sig = self.sign(auth) if signature is None else signature
        return self.escrow.functions.createAndPayBooking(auth.as_abi_tuple(), sig)

    def pay(
        self,
        auth: BookingAuthorization,
        signature: bytes | None = None,
        sender: DevAccount | None = None,
    ) -> TxReceipt:
        return self.send(self.pay_call(auth, signature), sender or self.roles.customer)

    def paid_booking(self, *, with_inviter: bool = False, amount: int = DEFAULT_AMOUNT) -> str:
        auth = self.booking_auth(with_inviter=with_inviter, amount=amount)
        self.pay(auth)
        return auth.booking_id

    def complete_call(self, booking_id: str) -> Any:
        return self.escrow.functions.completeService(bytes.fromhex(booking_id[2:]))

    def complete(self, booking_id: str, sender: DevAccount) -> TxReceipt:
        return self.send(self.complete_call(booking_id), sender)

    def cancel_call(self, auth: CancellationAuthorization, signature: bytes | None = None) -> Any:
        sig = self.sign(auth) if signature is None else signature
        return self.escrow.functions.cancelBooking(auth.as_abi_tuple(), sig)

    def cancel(
        self,
        auth: CancellationAuthorization,
        sender: DevAccount,
        signature: bytes | None = None,
    ) -> TxReceipt:
        return self.send(self.cancel_call(auth, signature), sender)

    def emergency_call(self, booking_id: str, reason: str = "orphan") -> Any:
        return self.escrow.functions.emergencyCancelBooking(bytes.fromhex(booking_id[2:]), reason)

    def emergency(
        self, booking_id: str, reason: str = "orphan", sender: DevAccount | None = None
    ) -> TxReceipt:
        return self.send(self.emergency_call(booking_id, reason), sender or self.roles.operator)

    def fail_as(self, sender: DevAccount, call: Any) -> Callable[[], object]:
        """A thunk sending ``call`` from ``sender``, for ``expect_revert``."""
        return lambda: call.transact({"from": sender.address})

    # ------------------------------------------------------------------ relayed payment (ERC-3009)

    def wallet_only_customer(self, funds: int = CUSTOMER_FUNDS) -> LocalAccount:
        """A customer holding ``funds`` USDC and no ETH, who has approved nothing."""
        account: LocalAccount = Account.from_key(WALLET_ONLY_KEY)
        self.send(self.usdc.functions.mint(account.address, funds), self.roles.stranger)
        assert self.eth_balance(account.address) == 0
        return account

    def eth_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def transfer_for(self, auth: BookingAuthorization, **window: int) -> ReceiveWithAuthorization:
        """The customer's ReceiveWithAuthorization bound to ``auth`` (window overrides)."""
        return receive_authorization(self.domain, auth, **window)

    def sign_transfer(
        self, transfer: ReceiveWithAuthorization, key: str, *, domain: Eip712Domain | None = None
    ) -> TransferAuthorization:
        """``transfer`` signed with ``key``, as the contract's struct (not checked here)."""
        signed = sign_receive_authorization(domain or self.token_domain, transfer, key)
        return TransferAuthorization.from_signature(transfer, signed.signature)

    def relay_call(
        self,
        auth: BookingAuthorization,
        transfer: TransferAuthorization,
        signature: bytes | None = None,
    ) -> Any:
        sig = self.sign(auth) if signature is None else signature
        return self.escrow.functions.createAndPayBookingWithAuthorization(
            auth.as_abi_tuple(), sig, transfer.as_abi_tuple()
        )

    def relay(
        self,
        auth: BookingAuthorization,
        transfer: TransferAuthorization,
        relayer: DevAccount | None = None,
    ) -> TxReceipt:
        """Submit a relayed payment from ``relayer`` (default: the ``other`` account)."""
        return self.send(self.relay_call(auth, transfer), relayer or self.roles.other)

    def expect_token_revert(self, message: str, action: Callable[[], object]) -> None:
        """``action`` must revert with USDC's ``Error(string)`` ``message`` (FiatTokenV2 uses
        require strings, not custom errors)."""
        with pytest.raises(ContractLogicError) as caught:
            action()
        data = caught.value.data
        assert isinstance(data, str)
        assert data[:10] == "0x08c379a0", data
        (reason,) = abi_decode(["string"], bytes.fromhex(data[10:]))
        assert reason == message

    # ------------------------------------------------------------------ the owner's timelock

    def owner_operation(self, call: Any, *, salt: bytes = b"\x00" * 32) -> tuple[Any, Any]:
        """The timelock's ``schedule`` and ``execute`` calls for the escrow call ``call``."""
        assert self.timelock is not None, "this escrow is owned by an account, not a timelock"
        data = bytes.fromhex(call._encode_transaction_data()[2:])
        no_predecessor = b"\x00" * 32
        t = self.timelock.functions
        delay = t.getMinDelay().call()
        target = self.escrow.address
        return (
            t.schedule(target, 0, data, no_predecessor, salt, delay),
            t.execute(target, 0, data, no_predecessor, salt),
        )
