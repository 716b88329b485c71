"""The API's side of relayed payments (issue #19): whether relaying is on now, the ERC-3009
transfer the customer signs, and the relay's refusals answered as HTTP errors.

The transfer is derived from the payment authorization by ``workflows.relay_terms``, the same
function the relay activity redeems it with, so what the wallet signs is what gets sent.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.exceptions import ApplicationError

from api.convert import payment_authorization_public
from api.errors import ApiError, Conflict, ServiceUnavailable, Unprocessable
from api.ratelimit import Quota, RateLimiter
from api.relay_schemas import RelayablePaymentAuthorizationPublic, TransferAuthorizationPublic
from bookme.relay_settings import RelaySettings
from chain.eip712 import Eip712Domain
from chain.errors import ChainError
from chain.escrow import EscrowReader
from chain.transfer_auth import read_token_domain, receive_typed_data
from workflows.relay_terms import transfer_terms
from workflows.types import PaymentAuthorization

T = TypeVar("T")

# The relay activity's refusal codes (workflows.errors.RelayRefused) and how each is answered.
REFUSALS: dict[str, type[ApiError]] = {
    "relay_unavailable": ServiceUnavailable,
    "relay_gas_cap": ServiceUnavailable,
    "insufficient_usdc": Conflict,
    "relay_simulation_failed": Unprocessable,
    "invalid_transfer_signature": Unprocessable,
}


def relay_refusal(cause: ApplicationError) -> ApiError:
    """The HTTP error of a ``RelayRefused`` (its code is the first detail)."""
    code = str(cause.details[0]) if cause.details else "relay_refused"
    return REFUSALS.get(code, Unprocessable)(cause.message, code=code)


class RelayDesk:
    """Reads what the API needs to offer relaying: the operator's balance, USDC's domain."""

    def __init__(self, settings: RelaySettings, escrow: EscrowReader | None) -> None:
        self._settings = settings
        self._escrow = escrow
        self._token: Eip712Domain | None = None

    async def require_on(self) -> None:
        """503 ``relay_unavailable`` (with the reason) unless a relayed payment may be sent now."""
        reason = self._settings.relay_off_reason(None)
        if reason is None:
            reason = self._settings.relay_off_reason(await self._operator_balance())
        if reason is not None:
            raise ServiceUnavailable(reason, code="relay_unavailable")

    async def with_transfer(
        self, auth: PaymentAuthorization
    ) -> RelayablePaymentAuthorizationPublic:
        """The payment authorization with the transfer that pays it, for the wallet to sign."""
        transfer = transfer_terms(auth)
        token = await self._chain_read(self._token_domain())
        return RelayablePaymentAuthorizationPublic(
            **payment_authorization_public(auth).model_dump(),
            transfer_authorization=TransferAuthorizationPublic(
                typed_data=receive_typed_data(token, transfer),
                valid_after=str(transfer.valid_after),
                valid_before=str(transfer.valid_before),
                nonce=transfer.nonce,
            ),
        )

    async def _operator_balance(self) -> int:
        escrow = self._require_escrow()
        operator = await self._chain_read(escrow.operator())
        return await self._chain_read(escrow.contract.client.get_balance(operator))

    async def _token_domain(self) -> Eip712Domain:
        if self._token is None:
            escrow = self._require_escrow()
            self._token = await read_token_domain(
                escrow.contract.client, await escrow.usdc_address()
            )
        return self._token

    def _require_escrow(self) -> EscrowReader:
        if self._escrow is None:
            raise ServiceUnavailable(
                "no chain is configured for relayed payments", code="relay_unavailable"
            )
        return self._escrow

    @staticmethod
    async def _chain_read(read: Awaitable[T]) -> T:
        try:
            return await read
        except ChainError:
            raise ServiceUnavailable(
                "the chain cannot be read now; retry, or pay from your wallet",
                code="relay_unavailable",
            ) from None


def set_up(desk: RelayDesk | None) -> RelayDesk:
    """The app's desk; 503 ``relay_unavailable`` in an app built without one."""
    if desk is None:
        raise ServiceUnavailable("relayed payments are not set up here", code="relay_unavailable")
    return desk


async def relay_rate_limit(limiter: RateLimiter, settings: RelaySettings, user_id: str) -> None:
    """Count one relayed payment request of this customer; 429 when over the minute's limit."""
    await limiter.enforce(
        [Quota(key=f"relay:user:{user_id}", limit=settings.relay_rate_limit_per_minute)]
    )


__all__ = ["REFUSALS", "RelayDesk", "relay_rate_limit", "relay_refusal", "set_up"]
