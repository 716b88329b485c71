"""`/admin/api-keys`: the marketplace's server-to-server keys, managed by operators.

The same operations as `bookme api-keys`; a new key is in the creation's answer only (with
`Cache-Control: no-store`), never again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OperatorUser, StateDep
from api.errors import NotFound, error_responses
from api.text import StorableText
from db.api_keys import create_api_key, key_is_live, list_api_keys, revoke_api_key

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/admin/api-keys", tags=["admin"])
_ERRORS = (401, 403, 422, 503)


class ApiKeyCreate(BaseModel):
    """Who the key acts as, a label, and how long it lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: StorableText = Field(
        default="marketplace",
        min_length=1,
        max_length=200,
        description="The caller the key acts as; keep it across rotations.",
    )
    name: StorableText = Field(default="", max_length=200)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class ApiKeyPublic(BaseModel):
    """A key as listed: never its secret."""

    key_id: str
    subject: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    live: bool


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="`bm_live_…`: shown once, stored only as a hash.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyPublic]


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*_ERRORS),
)
async def create_key(
    operator: OperatorUser, body: ApiKeyCreate, state: StateDep, response: Response
) -> ApiKeyCreated:
    """Create a key for the marketplace's server (operators only); the answer holds it once."""
    now = datetime.now(UTC)
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    async with state.sessions.begin() as session:
        created = await create_api_key(
            session, subject=body.subject, name=body.name, expires_at=expires
        )
    log.info("api key created", key_id=created.key_id, operator=operator.user_id)
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(
        key_id=created.key_id,
        subject=created.subject,
        name=created.name,
        created_at=now,
        expires_at=created.expires_at,
        revoked_at=None,
        live=True,
        key=created.key,
    )


@router.get("", response_model=ApiKeyList, responses=error_responses(*_ERRORS))
async def list_keys(operator: OperatorUser, state: StateDep) -> ApiKeyList:
    """Every key, newest first, without secrets (operators only)."""
    now = datetime.now(UTC)
    async with state.sessions() as session:
        rows = await list_api_keys(session)
    return ApiKeyList(
        items=[
            ApiKeyPublic(
                key_id=row.key_id,
                subject=row.subject,
                name=row.name,
                created_at=row.created_at,
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
                live=key_is_live(row, now),
            )
            for row in rows
        ]
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404, *_ERRORS),
)
async def revoke_key(
    operator: OperatorUser,
    state: StateDep,
    key_id: Annotated[str, Path(pattern="^[0-9a-f]{12}$", description="The key's id.")],
) -> Response:
    """Revoke a key now (operators only); requests with it are 401 `invalid_api_key`."""
    async with state.sessions.begin() as session:
        if not await revoke_api_key(session, key_id, now=datetime.now(UTC)):
            raise NotFound("no such API key", code="api_key_not_found")
    log.info("api key revoked", key_id=key_id, operator=operator.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
