"""Paying a booking the relayed way (issue #19), as a marketplace frontend does it.

One call for the demo and for the chaos workload: ask for the payment authorization with the
USDC transfer to sign, sign its typed data with the customer's key (what a wallet's
``eth_signTypedData_v4`` does), and post the signature. The platform sends the payment and pays
its gas: the customer's wallet needs USDC only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account


class RelayedPaymentRefused(Exception):
    """The API did not take the relayed payment: its status and error ``code`` say why."""

    def __init__(self, step: str, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.code = str(response.json().get("code", ""))
        except ValueError:
            self.code = ""
        super().__init__(f"{step}: HTTP {self.status} {response.text[:300]}")


@dataclass(frozen=True, kw_only=True)
class RelayedPayment:
    """What was paid (the authorization's EIP-712 message) and the platform's transaction."""

    authorization: dict[str, Any]
    tx_hash: str
    gas_used: int
    gas_cost_wei: int
    replayed: bool


def signed_transfer(offered: Mapping[str, Any], private_key: str) -> dict[str, Any]:
    """The body of `POST /bookings/{id}/payment`: the offered USDC transfer signed as a wallet's
    ``eth_signTypedData_v4`` signs it, with the validity window it was offered with."""
    transfer = offered["transferAuthorization"]
    signed = Account.sign_typed_data(private_key, full_message=transfer["typedData"])
    return {
        "signature": "0x" + bytes(signed.signature).hex(),
        "validAfter": transfer["validAfter"],
        "validBefore": transfer["validBefore"],
    }


async def pay_relayed(
    api: httpx.AsyncClient, booking_id: str, *, headers: Mapping[str, str], private_key: str
) -> RelayedPayment:
    """Pay ``booking_id`` with one signature by ``private_key`` (the booking's customer).

    ``replayed`` is true when the booking had been relayed already (calling again is safe: the
    same transaction comes back). Raises ``RelayedPaymentRefused`` on any refusal.
    """
    asked = await api.post(
        f"/bookings/{booking_id}/payment-authorization",
        params={"relayed": "true"},
        headers=dict(headers),
    )
    if asked.status_code != 200:
        raise RelayedPaymentRefused("payment authorization", asked)
    offered = asked.json()
    body = signed_transfer(offered, private_key)
    paid = await api.post(f"/bookings/{booking_id}/payment", json=body, headers=dict(headers))
    if paid.status_code not in (200, 202):
        raise RelayedPaymentRefused("relayed payment", paid)
    answer = paid.json()
    return RelayedPayment(
        authorization=offered["authorization"],
        tx_hash=answer["tx_hash"],
        gas_used=int(answer["gas_used"]),
        gas_cost_wei=int(answer["gas_cost_wei"]),
        replayed=bool(answer["replayed"]),
    )
