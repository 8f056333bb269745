"""Invite links to a workspace: made, listed and revoked by its instructors and admins; accepted by a
signed-in user (the portal's /invite/{token} page also lets a new person register first)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ...auth import invites
from ...core.bodylimit import BodyLimitedRoute
from ...models import Invite as InviteRow
from ...schemas import RoleName, aware
from ..deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(tags=["invites"], route_class=BodyLimitedRoute)


class InviteCreate(BaseModel):
    role: RoleName = Field(description="The role the invited people get.")
    expires_in_days: float = Field(default=14, gt=0, description="How long the link works.")
    max_uses: int = Field(default=1, ge=1, le=10_000, description="How many people may join with it.")


class Invite(BaseModel):
    id: str
    workspace: str
    role: RoleName
    created_at: datetime
    expires_at: datetime
    max_uses: int
    uses: int
    state: Literal["open", "used", "expired", "revoked"]

    @classmethod
    def of(cls, row: InviteRow) -> Invite:
        return cls(id=row.id, workspace=row.workspace, role=row.role, created_at=aware(row.created_at),
                   expires_at=aware(row.expires_at), max_uses=row.max_uses, uses=row.uses,
                   state=invites.invite_state(row))


class InviteCreated(Invite):
    url: str = Field(description="The link to hand out (shown only here).")


class InviteList(BaseModel):
    items: list[Invite]


class InviteAccepted(BaseModel):
    workspace: str
    role: RoleName


@router.post("/workspaces/{ws}/invites", status_code=201, response_model=InviteCreated)
async def create_invite(ws: str, body: InviteCreate, request: Request, session: SessionDep, settings: SettingsDep,
                        user: CurrentUser) -> InviteCreated:
    """A link with which people join the workspace with ``role`` (instructors and admins; only an admin
    invites admins)."""
    await invites.check_may_invite(request, user, ws, body.role)
    url, row = await run_in_threadpool(invites.create_invite, session, request, settings, creator=user,
                                       workspace=ws, role=body.role, expires_in_days=body.expires_in_days,
                                       max_uses=body.max_uses)
    return InviteCreated(**Invite.of(row).model_dump(), url=url)


@router.get("/workspaces/{ws}/invites", response_model=InviteList)
async def list_invites(ws: str, request: Request, session: SessionDep, user: CurrentUser) -> InviteList:
    """The workspace's invites (not their links, which are shown once)."""
    await invites.check_may_invite(request, user, ws, "student")
    rows = await run_in_threadpool(invites.list_invites, session, ws)
    return InviteList(items=[Invite.of(r) for r in rows])


@router.delete("/workspaces/{ws}/invites/{invite_id}", status_code=204, response_class=Response)
async def revoke_invite(ws: str, invite_id: str, request: Request, session: SessionDep,
                        user: CurrentUser) -> Response:
    """The link stops working at once."""
    await invites.check_may_invite(request, user, ws, "student")
    await run_in_threadpool(invites.revoke_invite, session, request, by=user, workspace=ws, invite_id=invite_id)
    return Response(status_code=204)


@router.post("/invites/{token}/accept", response_model=InviteAccepted)
async def accept_invite(token: str, request: Request, user: CurrentUser) -> InviteAccepted:
    """Join the invite's workspace as the signed-in user."""
    row = await invites.accept_invite(request, token=token, user=user)
    return InviteAccepted(workspace=row.workspace, role=row.role)
