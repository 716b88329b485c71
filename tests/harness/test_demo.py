"""`bookme demo` ends every booking right with exact balances, and fails on one unit off."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from api.money import format_units
from bookme.demo import booking_authorization_from_api, cancellation_authorization_from_api
from bookme.demo.expected import ExpectedBalances
from bookme.demo.render import render
from bookme.demo.runs import Party, Run
from bookme.demo.target import StackUrls, Target
from chain.basis_points import bps_of
from chain.eip712 import ZERO_ADDRESS, BookingAuthorization, CancellationAuthorization

ROOT = Path(__file__).resolve().parents[2]
DEMO_GUARD_SECONDS = 480  # private stack start (<=180 s) + the demo's own 300 s budget


def _target() -> Target:
    urls = StackUrls(
        api_url="http://api",
        rpc_url="http://rpc",
        temporal_address="t:7233",
        temporal_ui_url="http://ui:8233",
        deployment_file=Path("deployment.json"),
    )
    return Target(urls=urls, namespace="default", private=False)


PARTIES = (
    Party(label="customer", address="0x" + "11" * 20),
    Party(label="provider", address="0x" + "22" * 20),
)
INVITER = Party(label="inviter", address="0x" + "33" * 20)
TREASURY = Party(label="treasury", address="0x" + "44" * 20)


def _completed_run() -> Run:
    return Run(
        key="1 auto-complete",
        title="t",
        expected="COMPLETED",
        amount=1,
        status="COMPLETED",
        workflow_id="booking-x",
    )


def test_units_and_fee_match_the_contract_rounding():
    assert format_units(25_000_003) == "25.000003"
    assert format_units(5) == "0.000005"
    assert bps_of(25_000_003, 500) == 1_250_000  # Math.mulDiv floors
    assert bps_of(40_000_001, 1000) == 4_000_000


def _payment(inviter: str) -> BookingAuthorization:
    return BookingAuthorization(
        booking_id="0x" + "ab" * 32,
        customer=PARTIES[0].address,
        provider=PARTIES[1].address,
        inviter=inviter,
        amount=25_000_003,
        platform_fee_rate=500,
        inviter_fee_rate=500,
        release_time=1_767_225_600,
        expiry=1_767_218_700,
        nonce=2**130 + 1,
    )


def _as_api_json(message: dict[str, object]) -> dict[str, object]:
    """The API sends every uint256 as a decimal string."""
    return {k: str(v) if isinstance(v, int) else v for k, v in message.items()}


def test_authorizations_read_back_from_the_api_shape():
    payment = _payment(INVITER.address)
    assert booking_authorization_from_api(_as_api_json(payment.as_message())) == payment
    assert BookingAuthorization.from_message(payment.as_message()) == payment
    cancellation = CancellationAuthorization(
        booking_id=payment.booking_id,
        customer_amount=15_000_001,
        provider_amount=10_000_000,
        platform_amount=5_000_000,
        inviter_amount=0,
        reason="customer_late",
        expiry=1_767_218_700,
        nonce=7,
    )
    api_json = _as_api_json(cancellation.as_message())
    assert cancellation_authorization_from_api(api_json) == cancellation


def test_expected_balances_follow_the_contract_split():
    treasury = TREASURY.address
    parties = (*PARTIES, INVITER, TREASURY)
    expected = ExpectedBalances(parties, treasury=treasury)
    expected.completion(_payment(INVITER.address))
    assert expected.delta == {
        PARTIES[0].address: -25_000_003,
        PARTIES[1].address: 25_000_003 - 2 * 1_250_000,
        INVITER.address: 1_250_000,
        treasury: 1_250_000,
    }
    alone = ExpectedBalances(parties, treasury=treasury)
    alone.completion(replace(_payment(ZERO_ADDRESS), inviter_fee_rate=0))
    assert alone.delta[INVITER.address] == 0
    assert sum(alone.delta.values()) == 0


def test_render_passes_only_when_every_balance_is_exact():
    before = {p.address: 100 for p in PARTIES}
    expected = {PARTIES[0].address: -40, PARTIES[1].address: 36}
    after = {PARTIES[0].address: 60, PARTIES[1].address: 136}
    table, ok = render(_target(), [_completed_run()], PARTIES, before, after, expected)
    assert ok, table
    assert "http://ui:8233/namespaces/default/workflows/booking-x" in table

    off_by_one = {**after, PARTIES[1].address: 135}
    table, ok = render(_target(), [_completed_run()], PARTIES, before, off_by_one, expected)
    assert not ok
    assert "DEMO FAILED" in table


def test_render_fails_a_booking_in_the_wrong_state():
    run = _completed_run()
    run.status = "PAID"
    same = {p.address: 0 for p in PARTIES}
    _, ok = render(_target(), [run], PARTIES, same, same, same)
    assert not ok


@pytest.mark.integration
def test_demo_on_a_private_stack_passes_and_leaves_nothing_running(service_dir):
    data_dir = service_dir / f"demo-{os.getpid()}"
    env = {**os.environ, "BOOKME_DATA_DIR": str(data_dir)}
    for name in ("BOOKME_DATABASE_URL", "BOOKME_TEMPORAL_ADDRESS", "BOOKME_RPC_URLS"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookme", "demo", "--stack", "private"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=DEMO_GUARD_SECONDS)
    finally:
        if proc.poll() is None:
            proc.terminate()  # the command stops its private stack on SIGTERM too
            proc.wait(timeout=60)
    assert proc.returncode == 0, output
    assert "DEMO PASSED" in output
    assert "auto-complete delay 20s" in output  # the timers in force are stated
    booking_rows = output.split("\nBookings\n")[1].split("\nUSDC balances")[0]
    finals = [line.split()[2:5] for line in booking_rows.splitlines() if line[2:3].isdigit()]
    assert len(finals) == 6, output
    assert all(row[-1] == "ok" for row in finals), output
    balances = output.split("USDC balances")[1].splitlines()[2:8]
    assert [line.split()[0] for line in balances] == [
        "customer",
        "provider",
        "inviter",
        "treasury",
        "escrow",
        "gasless",
    ]
    # Booking 6's wallet paid with one signature and never held any ETH.
    assert output.count("gasless wallet holds 0 wei ETH") == 2, output
    assert all(line.rstrip().endswith(" ok") for line in balances), output
    # The private stack ran under its own data dir and is gone with the command.
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(str(data_dir) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == [], [p.info["cmdline"] for p in leftovers]
