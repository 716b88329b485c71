"""HTTP models of `/admin/webhooks` (request `XCreate`, response `XPublic`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookEndpointCreate(_In):
    """A marketplace URL to receive events."""

    url: str = Field(max_length=2000, examples=["https://marketplace.example/hooks/bookme"])
    description: str = Field(default="", max_length=200)


class WebhookEndpointPublic(BaseModel):
    """An endpoint (never its secret) and its deliveries waiting or given up."""

    id: uuid.UUID
    url: str
    description: str
    created_at: datetime
    active_secrets: int
    pending: int
    dead: int


class WebhookSecretPublic(BaseModel):
    """A new signing secret: shown in this response only, stored encrypted."""

    endpoint_id: uuid.UUID
    secret: str = Field(description="Store it in the receiver now; it is never shown again.")
    previous_expires_at: datetime | None = Field(
        default=None, description="After a rotation: the old secret also signs until then."
    )


class WebhookReplayCreate(_In):
    """Which events to send again: at least one of event_id, booking_id, since."""

    event_id: uuid.UUID | None = None
    booking_id: uuid.UUID | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    endpoint_id: uuid.UUID | None = Field(default=None, description="Only to this endpoint.")


class WebhookReplayPublic(BaseModel):
    """How many deliveries were queued again."""

    queued: int
