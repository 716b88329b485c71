"""`python -m api`: serve the API with uvicorn on `BOOKME_API_HOST`:`BOOKME_API_PORT`."""

from __future__ import annotations

import uvicorn

from bookme.logging import configure_logging
from bookme.settings import Settings


def main() -> None:
    """Run one API process."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        # The same trusted proxies the app applies itself (api/main.py), so uvicorn's own
        # view of the client agrees; never "*" (any client could choose its address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        log_config=None,
        # Open event streams are cut after this; clients reconnect (Last-Event-ID) elsewhere.
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
