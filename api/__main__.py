"""`python -m api`: serve the API with uvicorn on `BOOKME_API_HOST`:`BOOKME_API_PORT`."""

from __future__ import annotations

import uvicorn

from api.draining import DrainingServer
from api.main import create_app
from bookme.logging import configure_logging
from bookme.settings import Settings


def main() -> None:
    """Run one API process."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        # The same trusted proxies the app applies itself (api/main.py), so uvicorn's own
        # view of the client agrees; never "*" (any client could choose its address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        log_config=None,
        # Event streams end when the stop is asked (api/draining.py); this bounds the rest.
        timeout_graceful_shutdown=30,
    )
    DrainingServer(config, app).run()


if __name__ == "__main__":
    main()
