"""Operator commands on the marketplace's own rows of an adopted bookings table."""

from __future__ import annotations

import uuid

import pytest

from bookme.settings import Settings
from db.migrate import upgrade_async
from tests.db.introspect import execute
from tests.ops.conftest import run_cli

pytestmark = pytest.mark.integration


async def test_show_says_a_marketplace_row_is_not_the_services(database_url, capsys):
    await upgrade_async(database_url)
    booking_id = str(uuid.uuid4())
    await execute(
        database_url,
        "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at, status)"  # noqa: S608
        f" VALUES ('{booking_id}', 'svc', 'c', 'p', now(), 'NO_SHOW')",
    )
    # No Temporal and no chain here: the row alone answers, before either is asked.
    settings = Settings(_env_file=None, database_url=database_url)

    shown = await run_cli(settings, "show", booking_id)

    assert shown.code == 2
    error = capsys.readouterr().err
    assert "marketplace's own row" in error
    assert "'NO_SHOW'" in error
