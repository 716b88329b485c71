"""Every database connection of the API in use and none freed within the pool's timeout: an
overload, a 503 with Retry-After, not a 500.

Found by the soak (bench/chaos --soak): under steady load on a small machine an API process's
pool ran dry and each such request was a 500 internal_error.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.conftest import ApiFactory
from tests.api.helpers import OPERATOR_AUTH, serve

pytestmark = pytest.mark.integration


async def test_a_pool_with_no_connection_free_is_a_503_with_retry_after(
    factory: ApiFactory,
) -> None:
    engine = create_async_engine(
        factory.settings.database_url, pool_size=1, max_overflow=0, pool_timeout=0.5
    )
    try:
        async with serve(factory.app(engine=engine)) as http, engine.connect() as held:
            assert held is not None  # the pool's only connection, held by someone else
            listing = await http.get("/bookings", headers=OPERATOR_AUTH)
            assert listing.status_code == 503, listing.text
            assert listing.json()["code"] == "database_busy"
            assert int(listing.headers["Retry-After"]) >= 1
    finally:
        await engine.dispose()
