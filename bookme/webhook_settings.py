"""Settings of the webhooks to the marketplace (environment ``BOOKME_WEBHOOK_*``; README
"Integrating with your marketplace" > "Webhooks").

A base class of ``bookme.settings.Settings``, so they are read with every other knob by the one
settings object; kept here because they belong together.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

# A published Fernet key, refused in production (bookme/settings_checks.py).
DEV_WEBHOOK_ENCRYPTION_KEY = "ZGV2LXdlYmhvb2sta2V5LWNoYW5nZS1tZS0zMmJ5dGU="


class WebhookSettings(BaseSettings):
    """How events reach the marketplace's endpoints: signing, timeouts, retries."""

    # Fernet key encrypting the endpoints' signing secrets at rest; the development default is
    # refused in production. Changing it makes stored secrets unreadable: rotate them after.
    webhook_encryption_key: SecretStr = SecretStr(DEV_WEBHOOK_ENCRYPTION_KEY)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # A failed delivery is retried with doubling waits (initial .. max) until the horizon has
    # passed since the event (or its replay), then marked dead (replay it with the CLI).
    webhook_retry_initial_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_horizon_seconds: float = Field(default=3 * 86400.0, gt=0)
    # After `bookme webhooks rotate`, the old secret keeps signing (a second v1=) this long.
    webhook_secret_overlap_seconds: int = Field(default=86400, ge=0)
    webhook_poll_interval_seconds: float = Field(default=2.0, gt=0)
