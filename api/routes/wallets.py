"""`/me/wallets`: wallets a marketplace user proved they hold, with Sign-In with Ethereum.

1. `POST /me/wallets/nonce`: a single-use nonce (stored in Postgres, expiring), with the domain
   and chain id the message must name.
2. The frontend builds the EIP-4361 message and has the wallet sign it (`personal_sign`).
3. `POST /me/wallets` with the message and signature: checked (domain, chain, nonce, times,
   signature) and the wallet is linked to the caller. A wallet has one owner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PARTY_ROLES, Principal
from api.deps import CurrentUser, StateDep
from api.errors import Conflict, Forbidden, InvalidField, NotFound, error_responses
from api.schemas import check_wallet
from api.siwe import SiweError, check_message, check_signature, parse_message
from db.wallet_links import (
    WalletLinkedElsewhere,
    consume_nonce,
    issue_nonce,
    link_wallet,
    linked_wallets,
    unlink_wallet,
)

router = APIRouter(prefix="/me/wallets", tags=["identity"])
_ERRORS = (401, 403, 422, 503)


async def wallet_owner_user(user: CurrentUser) -> Principal:
    """The caller, if it is a marketplace user who can hold wallets (not operator or service)."""
    if user.role not in PARTY_ROLES:
        raise Forbidden("only marketplace users link wallets", code="party_only")
    return user


WalletUser = Annotated[Principal, Depends(wallet_owner_user)]


class SiweNoncePublic(BaseModel):
    """What the frontend puts into the EIP-4361 message it asks the wallet to sign."""

    nonce: str
    domain: str = Field(description="The message's domain (the frontend's host).")
    chain_id: int = Field(description="The message's `Chain ID`.")
    expires_at: datetime = Field(description="The nonce is refused after this (single use).")


class WalletLinkCreate(BaseModel):
    """A signed EIP-4361 message: the proof that the caller holds the wallet it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str = Field(max_length=4096, description="The EIP-4361 message, exactly as signed.")
    signature: str = Field(max_length=200, description="0x + 65-byte personal_sign signature.")


class LinkedWalletPublic(BaseModel):
    address: str
    chain_id: int
    linked_at: datetime


class LinkedWalletList(BaseModel):
    items: list[str] = Field(description="The caller's proven wallets (EIP-55), oldest first.")


@router.post(
    "/nonce",
    response_model=SiweNoncePublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*_ERRORS),
)
async def new_nonce(user: WalletUser, state: StateDep) -> SiweNoncePublic:
    """A single-use nonce for one Sign-In with Ethereum message."""
    settings = state.settings
    ttl = timedelta(seconds=settings.siwe_nonce_ttl_seconds)
    async with state.sessions.begin() as session:
        row = await issue_nonce(session, user.user_id, now=datetime.now(UTC), ttl=ttl)
    return SiweNoncePublic(
        nonce=row.nonce,
        domain=settings.siwe_domain,
        chain_id=settings.chain_id,
        expires_at=row.expires_at,
    )


@router.post(
    "",
    response_model=LinkedWalletPublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409, *_ERRORS),
)
async def link(user: WalletUser, body: WalletLinkCreate, state: StateDep) -> LinkedWalletPublic:
    """Link the wallet a signed EIP-4361 message names to the caller."""
    settings = state.settings
    now = datetime.now(UTC)
    try:
        message = parse_message(body.message)
        check_message(message, domain=settings.siwe_domain, chain_id=settings.chain_id, now=now)
        check_signature(body.message, body.signature, message.address)
    except SiweError as exc:
        refused = InvalidField(f"body.{exc.field}", exc.message)
        refused.code = "siwe_invalid"
        raise refused from None
    async with state.sessions.begin() as session:
        if not await consume_nonce(session, user.user_id, message.nonce, now=now):
            raise Conflict(
                "the nonce is unknown, used or expired: ask for a new one",
                code="siwe_nonce_invalid",
            )
        try:
            row = await link_wallet(
                session,
                user_id=user.user_id,
                address=message.address,
                chain_id=message.chain_id,
                message=body.message,
                signature=body.signature,
            )
        except WalletLinkedElsewhere:
            raise Conflict(
                "this wallet is linked to another user", code="wallet_linked_elsewhere"
            ) from None
    return LinkedWalletPublic(address=row.address, chain_id=row.chain_id, linked_at=row.linked_at)


@router.get("", response_model=LinkedWalletList, responses=error_responses(*_ERRORS))
async def list_wallets(user: WalletUser, state: StateDep) -> LinkedWalletList:
    """The caller's wallets proven with Sign-In with Ethereum."""
    async with state.sessions() as session:
        return LinkedWalletList(items=list(await linked_wallets(session, user.user_id)))


@router.delete(
    "/{address}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(404, *_ERRORS),
)
async def unlink(
    user: WalletUser,
    state: StateDep,
    address: Annotated[str, Path(description="The wallet (0x address).", max_length=42)],
) -> Response:
    """Unlink one of the caller's wallets (it may then be linked again, by whoever proves it)."""
    try:
        wallet = check_wallet(address)
    except ValueError as exc:
        raise InvalidField("path.address", str(exc)) from None
    async with state.sessions.begin() as session:
        if not await unlink_wallet(session, user.user_id, wallet):
            raise NotFound("you have no such linked wallet", code="wallet_not_linked")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
