"""`/admin/webhooks`: the marketplace's endpoints, their signing secrets and replays (operators)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import NoReturn

from fastapi import APIRouter, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import OperatorUser, SessionDep, StateDep
from api.errors import BadRequest, InvalidField, NotFound, error_responses
from api.webhook_schemas import (
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookReplayCreate,
    WebhookReplayPublic,
    WebhookSecretPublic,
)
from bookme.settings import Environment
from db.webhook_endpoints import (
    EndpointNotFound,
    ReplaySelection,
    SecretBox,
    check_url,
    create_endpoint,
    list_endpoints,
    remove_endpoint,
    replay,
    rotate_secret,
)

router = APIRouter(prefix="/admin/webhooks", tags=["admin"])


def _box(state: StateDep) -> SecretBox:
    return SecretBox(state.settings.webhook_encryption_key.get_secret_value())


@router.post(
    "/endpoints",
    response_model=WebhookSecretPublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 422),
)
async def add_endpoint(
    _: OperatorUser, body: WebhookEndpointCreate, session: SessionDep, state: StateDep
) -> WebhookSecretPublic:
    """Register an endpoint; its signing secret is in this response only (operators only)."""
    try:
        production = state.settings.environment is Environment.PRODUCTION
        url = check_url(body.url, https_only=production)
    except ValueError as exc:
        raise InvalidField("body.url", str(exc)) from None
    endpoint_id, secret = await create_endpoint(
        session, _box(state), url=url, description=body.description
    )
    await session.commit()
    return WebhookSecretPublic(endpoint_id=endpoint_id, secret=secret)


@router.get(
    "/endpoints",
    response_model=list[WebhookEndpointPublic],
    responses=error_responses(401, 403),
)
async def get_endpoints(_: OperatorUser, session: SessionDep) -> list[WebhookEndpointPublic]:
    """Active endpoints with their pending and dead deliveries (operators only)."""
    return [
        WebhookEndpointPublic.model_validate(e, from_attributes=True)
        for e in await list_endpoints(session)
    ]


async def _not_found(session: AsyncSession, endpoint_id: uuid.UUID) -> NoReturn:
    await session.rollback()
    raise NotFound(f"no active webhook endpoint {endpoint_id}", code="webhook_endpoint_not_found")


@router.post(
    "/endpoints/{endpoint_id}/rotate",
    response_model=WebhookSecretPublic,
    responses=error_responses(401, 403, 404, 422),
)
async def rotate(
    _: OperatorUser, endpoint_id: uuid.UUID, session: SessionDep, state: StateDep
) -> WebhookSecretPublic:
    """A new secret (in this response only); the old one signs too until the overlap ends."""
    overlap = timedelta(seconds=state.settings.webhook_secret_overlap_seconds)
    try:
        secret, until = await rotate_secret(session, _box(state), endpoint_id, overlap=overlap)
    except EndpointNotFound:
        await _not_found(session, endpoint_id)
    await session.commit()
    return WebhookSecretPublic(endpoint_id=endpoint_id, secret=secret, previous_expires_at=until)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422),
)
async def remove(_: OperatorUser, endpoint_id: uuid.UUID, session: SessionDep) -> Response:
    """Stop sending to an endpoint; its delivery history stays (operators only)."""
    try:
        await remove_endpoint(session, endpoint_id)
    except EndpointNotFound:
        await _not_found(session, endpoint_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/replay",
    response_model=WebhookReplayPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 422),
)
async def replay_events(
    _: OperatorUser, body: WebhookReplayCreate, session: SessionDep
) -> WebhookReplayPublic:
    """Queue events again (by event, booking or time range); the relay sends them in order."""
    selection = ReplaySelection(
        event_id=body.event_id,
        booking_id=body.booking_id,
        since=body.since,
        until=body.until,
        endpoint_id=body.endpoint_id,
    )
    if selection.is_empty():
        raise BadRequest("say what to replay: event_id, booking_id or since", code="empty_replay")
    queued = await replay(session, selection)
    await session.commit()
    return WebhookReplayPublic(queued=queued)
