"""Relayed payments through the API on the real stack (issue #19): a wallet with USDC and no ETH
pays with one signature, the platform's operator sends it and pays the gas, and the booking
goes PAID then COMPLETED; a repeated request never sends a second transaction; every refusal
is a clear 4xx/503 and sends nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from chain.escrow import escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender
from tests.api.relay_stack import (
    CUSTOMER,
    CUSTOMER_AUTH,
    FUNDS,
    PROVIDER_AUTH,
    RelayStack,
    api_with,
    ask_transfer,
    payment_body,
    relay_chain,
    relay_stack,
    sign_typed_data,
)

pytestmark = pytest.mark.integration
__all__ = ["relay_chain", "relay_stack"]  # fixtures

GUARD_SECONDS = 120  # against a hung test only; nothing asserts on elapsed time


async def status_of(api: httpx.AsyncClient, booking_id: str) -> str:
    row = (await api.get(f"/bookings/{booking_id}", headers=CUSTOMER_AUTH)).json()
    assert row["status"] != "FAILED", row
    return str(row["status"])


async def wait_for(api: httpx.AsyncClient, booking_id: str, status: str) -> None:
    # The state lives in the worker: nothing to wait on across it but the API's answer.
    while await status_of(api, booking_id) != status:  # noqa: ASYNC110
        await asyncio.sleep(0.2)


async def test_a_wallet_without_eth_pays_with_one_signature_and_the_booking_completes(
    relay_stack: RelayStack,
) -> None:
    stack = relay_stack
    api = stack.api
    async with asyncio.timeout(GUARD_SECONDS):
        assert await stack.chain.get_balance(CUSTOMER) == 0
        booking_id = await stack.create_booking(amount="40", in_seconds=60)
        offered = await ask_transfer(api, booking_id)
        transfer = offered["transferAuthorization"]
        message = transfer["typedData"]["message"]
        assert transfer["typedData"]["primaryType"] == "ReceiveWithAuthorization"
        assert (message["from"], message["to"]) == (CUSTOMER, stack.deployment.escrow)
        assert int(message["value"]) == 40 * 10**6
        body = payment_body(transfer, sign_typed_data(transfer["typedData"]))
        operator_nonce = await stack.operator_nonce()

        paid = await api.post(f"/bookings/{booking_id}/payment", json=body, headers=CUSTOMER_AUTH)
        assert paid.status_code == 202, paid.text
        relay = paid.json()
        assert relay["replayed"] is False
        again = await api.post(f"/bookings/{booking_id}/payment", json=body, headers=CUSTOMER_AUTH)
        assert again.status_code == 200, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == {**relay, "replayed": True}
        assert await stack.operator_nonce() == operator_nonce + 1  # one transaction, asked twice

        receipt = await stack.chain.get_transaction_receipt(relay["tx_hash"])
        assert receipt is not None
        assert receipt.succeeded
        cost = receipt.gas_used * receipt.effective_gas_price
        assert (relay["gas_used"], int(relay["gas_cost_wei"])) == (receipt.gas_used, cost)
        async with stack.sessions() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT tx_hash, gas_used, gas_cost_wei FROM relayed_payments"
                        " WHERE booking_id = :id"
                    ),
                    {"id": booking_id},
                )
            ).one()
        assert (row.tx_hash, row.gas_used, int(row.gas_cost_wei)) == (
            relay["tx_hash"],
            receipt.gas_used,
            cost,
        )
        assert await stack.escrow.usdc_balance_of(CUSTOMER) == FUNDS - 40 * 10**6
        stack.anvil.rpc("anvil_mine", "0x2")  # past the confirmation depth
        await wait_for(api, booking_id, "PAID")

        # After the release time anyone may complete on chain: the provider does; the customer,
        # still without ETH, only reports it.
        release = int(offered["authorization"]["releaseTime"])
        stack.anvil.rpc("evm_setNextBlockTimestamp", release + 1)
        provider = TransactionSender(
            stack.chain, TransactionKey(stack.anvil.accounts[2].private_key), chain_id=31337
        )
        chain_id = bytes.fromhex(offered["authorization"]["bookingId"][2:])
        completion, mined = await provider.send_and_wait(
            to=stack.deployment.escrow, data=escrow_abi().encode_call("completeService", chain_id)
        )
        assert mined.succeeded
        report = {"tx_hash": completion.tx_hash, "kind": "completion"}
        reported = await api.post(
            f"/bookings/{booking_id}/transactions", json=report, headers=CUSTOMER_AUTH
        )
        assert reported.status_code == 202, reported.text
        stack.anvil.rpc("anvil_mine", "0x2")
        await wait_for(api, booking_id, "COMPLETED")

    events = (await api.get(f"/bookings/{booking_id}/events", headers=CUSTOMER_AUTH)).json()
    moves = [e["to_status"] for e in events["items"] if e["to_status"] != e["from_status"]]
    assert moves == ["PENDING_PAYMENT", "PAID", "COMPLETED"]
    assert await stack.chain.get_balance(CUSTOMER) == 0
    # Paid once: the second request relayed nothing.
    assert await stack.escrow.usdc_balance_of(CUSTOMER) == FUNDS - 40 * 10**6


async def test_refusals_send_nothing_and_say_why(relay_stack: RelayStack) -> None:
    stack = relay_stack
    api = stack.api
    async with asyncio.timeout(GUARD_SECONDS):
        operator_nonce = await stack.operator_nonce()
        booking_id = await stack.create_booking()
        url = f"/bookings/{booking_id}/payment"
        transfer = (await ask_transfer(api, booking_id))["transferAuthorization"]
        signed = payment_body(transfer, sign_typed_data(transfer["typedData"]))

        not_customer = await api.post(url, json=signed, headers=PROVIDER_AUTH)
        assert (not_customer.status_code, not_customer.json()["code"]) == (403, "wrong_caller")

        # Someone else's signature: refused before the chain is asked to run anything.
        stranger = payment_body(transfer, sign_typed_data(transfer["typedData"], "0x" + "11" * 32))
        forged = await api.post(url, json=stranger, headers=CUSTOMER_AUTH)
        assert (forged.status_code, forged.json()["code"]) == (422, "invalid_transfer_signature")

        # The customer's own signature over a window that is not open yet: the eth_call fails.
        opens = str(int(transfer["validBefore"]) - 1)
        early = {**transfer["typedData"]["message"], "validAfter": opens}
        typed = {**transfer["typedData"], "message": early}
        not_yet = {**payment_body(transfer, sign_typed_data(typed)), "validAfter": opens}
        simulated = await api.post(url, json=not_yet, headers=CUSTOMER_AUTH)
        assert simulated.status_code == 422, simulated.text
        assert simulated.json()["code"] == "relay_simulation_failed"
        assert "not yet valid" in simulated.json()["message"]

        # More than the wallet holds.
        costly = await stack.create_booking(amount=str(FUNDS // 10**6 + 1))
        costly_transfer = (await ask_transfer(api, costly))["transferAuthorization"]
        short = await api.post(
            f"/bookings/{costly}/payment",
            json=payment_body(costly_transfer, sign_typed_data(costly_transfer["typedData"])),
            headers=CUSTOMER_AUTH,
        )
        assert (short.status_code, short.json()["code"]) == (409, "insufficient_usdc")

        # No payment authorization issued yet: nothing to pay.
        unasked = await stack.create_booking()
        early_call = await api.post(
            f"/bookings/{unasked}/payment", json=signed, headers=CUSTOMER_AUTH
        )
        assert (early_call.status_code, early_call.json()["code"]) == (409, "wrong_state")

        assert await stack.operator_nonce() == operator_nonce
        assert await stack.ledger_rows() == 0
        assert await status_of(api, booking_id) == "PENDING_PAYMENT"


async def test_relaying_off_or_low_on_gas_is_503_and_paying_directly_still_works(
    relay_stack: RelayStack,
) -> None:
    stack = relay_stack
    async with asyncio.timeout(GUARD_SECONDS):
        booking_id = await stack.create_booking()
        transfer = (await ask_transfer(stack.api, booking_id))["transferAuthorization"]
        signed = payment_body(transfer, sign_typed_data(transfer["typedData"]))
        for overrides, words in (
            ({"relay_enabled": False}, "turned off"),
            ({"relay_min_operator_balance_wei": 10**30}, "low on gas"),
        ):
            async with api_with(stack, **overrides) as api:
                offered = await api.post(
                    f"/bookings/{booking_id}/payment-authorization",
                    params={"relayed": "true"},
                    headers=CUSTOMER_AUTH,
                )
                assert offered.status_code == 503, offered.text
                assert offered.json()["code"] == "relay_unavailable"
                assert words in offered.json()["message"]
                relayed = await api.post(
                    f"/bookings/{booking_id}/payment", json=signed, headers=CUSTOMER_AUTH
                )
                assert (relayed.status_code, relayed.json()["code"]) == (503, "relay_unavailable")
                direct = await api.post(
                    f"/bookings/{booking_id}/payment-authorization", headers=CUSTOMER_AUTH
                )
                assert direct.status_code == 200, direct.text
                # The answer existing clients know, unchanged: no transfer unless asked for.
                assert "transferAuthorization" not in direct.json()
                assert direct.json()["signature"].startswith("0x")
        assert await stack.ledger_rows() == 0


async def test_relayed_payments_are_rate_limited_per_customer(relay_stack: RelayStack) -> None:
    stack = relay_stack
    async with asyncio.timeout(GUARD_SECONDS):
        booking_id = await stack.create_booking()
        transfer = (await ask_transfer(stack.api, booking_id))["transferAuthorization"]
        stranger = payment_body(transfer, sign_typed_data(transfer["typedData"], "0x" + "22" * 32))
        async with api_with(stack, relay_rate_limit_per_minute=2) as api:
            url = f"/bookings/{booking_id}/payment"
            answers = []
            # At most one minute boundary falls within these calls: 2 + 2 pass at most.
            for _ in range(5):
                answer = await api.post(url, json=stranger, headers=CUSTOMER_AUTH)
                answers.append(answer.status_code)
                if answer.status_code == 429:
                    assert answer.json()["code"] == "rate_limited"
                    assert int(answer.headers["Retry-After"]) >= 1
                    break
        assert answers[-1] == 429, answers
        assert set(answers[:-1]) == {422}  # every request under the limit was counted and judged
        assert 2 <= len(answers) - 1 <= 4
