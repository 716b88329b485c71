"""CORS for the marketplace's frontend origins (BOOKME_CORS_ORIGINS); none configured, none sent.

Browsers call the API with a bearer token in `Authorization`, not with cookies, so credentials
are off by default; `*` together with credentials is refused in production (settings_checks).
Installed outermost, so preflights are answered before anything else and every response,
refusals (401, 413, 429) included, carries the headers the browser needs to read it.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from bookme.settings import Settings

ALLOWED_METHODS = ("GET", "POST", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")
# Response headers a page may read: where a booking lives, when to retry, replays, auth errors.
EXPOSED_HEADERS = ("Location", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate")
PREFLIGHT_MAX_AGE_SECONDS = 600


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Answer cross-origin requests from the configured origins (call after other middleware)."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
