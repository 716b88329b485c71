"""The operator's view: the Temporal Web UI of the test stack, filtered by BookingStatus.

Real bookings (real worker, activities, Postgres and anvil, as in the lifecycle tests) in
three statuses; headless Chromium opens the workflow list with the operator's filter, adds
the BookingStatus column as an operator would, and must list exactly the PAID ones.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, async_playwright, expect
from temporalio.client import WorkflowExecutionStatus

from tests.conftest import TemporalService
from tests.workflows.test_lifecycle_integration import Stack
from tests.workflows.test_lifecycle_integration import stack as stack  # the fixture
from workflows.types import (
    AuthorizePaymentRequest,
    BookingStatus,
    CancellationRequest,
    PartyRole,
    PaymentAuthorization,
    ReportTransactionRequest,
    TransactionKind,
)

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "sudo apt-get install -y chromium chromium-driver"
# What this machine's Chromium needs headless: no sandbox as root, no GPU, nothing phoned home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "ui"
QUERY = 'BookingStatus="PAID"'
UI_TIMEOUT_MS = 30_000
S = BookingStatus


async def _paid(stack: Stack) -> str:
    booking = stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=2))
    handle = await stack.start(booking)
    # By name: temporalio's stubs mistype an async update method's result (see workflows/client.py).
    auth = await handle.execute_update(
        "authorize_payment",
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
        result_type=PaymentAuthorization,
    )
    tx = stack.pay(auth)
    await handle.execute_update(
        "report_transaction",
        ReportTransactionRequest(
            tx_hash=tx,
            kind=TransactionKind.PAYMENT,
            role=PartyRole.CUSTOMER,
            wallet=booking.customer_wallet,
        ),
    )
    await _until_status(stack, handle.id, S.PAID)
    return handle.id


async def _pending(stack: Stack) -> str:
    handle = await stack.start(stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=2)))
    await _until_status(stack, handle.id, S.PENDING_PAYMENT)
    return handle.id


async def _cancelled(stack: Stack) -> str:
    booking = stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=2))
    handle = await stack.start(booking)
    await handle.execute_update(
        "request_cancellation",
        CancellationRequest(
            role=PartyRole.CUSTOMER, wallet=booking.customer_wallet, reason="changed plans"
        ),
    )
    await _until_status(stack, handle.id, S.CANCELLED)
    return handle.id


async def _until_status(stack: Stack, workflow_id: str, status: BookingStatus) -> None:
    """Until the visibility store (what the UI lists) shows the booking in ``status``."""
    query = f'WorkflowId="{workflow_id}" AND BookingStatus="{status.value}"'
    for _ in range(300):
        if (await stack.client.count_workflows(query)).count == 1:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} never listed as {status.value}")


async def _open_filtered_list(page: Page, temporal: TemporalService) -> None:
    url = f"{temporal.ui_url}/namespaces/{temporal.namespace}/workflows?query={quote(QUERY)}"
    await page.goto(url)
    # The query became the UI's filter (not just a URL parameter it ignored).
    await expect(
        page.get_by_role("button", name=re.compile(r'BookingStatus = "PAID"'))
    ).to_be_visible(timeout=UI_TIMEOUT_MS)
    await page.get_by_test_id("workflows-summary-table-configuration-button").click()
    await page.get_by_test_id("orderable-list-item-BookingStatus-add-button").click()
    await page.get_by_role("button", name="Close").first.click()


@pytest.fixture
def chromium() -> Path:
    """Checked before the bookings are made: a missing browser fails at once, never skips."""
    if not CHROMIUM.exists():
        pytest.fail(f"the Temporal UI test needs Chromium at {CHROMIUM}; install it: {INSTALL}")
    return CHROMIUM


async def test_operator_filters_bookings_by_status_in_the_temporal_ui(
    chromium: Path, stack: Stack, temporal: TemporalService
) -> None:
    assert temporal.ui_url, "an external Temporal needs BOOKME_TEST_TEMPORAL_UI_URL for this test"
    paid = [await _paid(stack), await _paid(stack)]
    others = [await _pending(stack), await _cancelled(stack)]
    try:
        await _look(chromium, temporal, paid, others)
    finally:
        # Running bookings without their worker would only confuse later tests' listings.
        for workflow_id in [*paid, *others]:
            handle = stack.client.get_workflow_handle(workflow_id)
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("browser test finished")


async def _look(
    chromium: Path, temporal: TemporalService, paid: list[str], others: list[str]
) -> None:
    """Only the PAID bookings listed, each with its BookingStatus cell; a screenshot kept."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT_DIR / "temporal-ui-booking-status-paid.png"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 2200, "height": 700})
            page.set_default_timeout(UI_TIMEOUT_MS)
            await _open_filtered_list(page, temporal)
            header = page.get_by_role("columnheader", name="BookingStatus")
            await expect(header).to_be_visible(timeout=UI_TIMEOUT_MS)
            for workflow_id in paid:
                row = page.get_by_role("row").filter(
                    has=page.get_by_role("link", name=workflow_id, exact=True)
                )
                await expect(row).to_have_count(1, timeout=UI_TIMEOUT_MS)
                await expect(row.get_by_role("cell", name="PAID", exact=True)).to_be_visible()
            for workflow_id in others:
                await expect(page.get_by_role("link", name=workflow_id, exact=True)).to_have_count(
                    0
                )
            await page.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    print(f"screenshot: {screenshot}")  # noqa: T201
