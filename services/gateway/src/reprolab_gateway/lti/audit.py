"""lti.* events, through the gateway's outbox (committed with the change, published afterwards).

Refused launches go to the platform's accounts log (they are failed sign-ins, and a refused token's
course cannot be trusted); everything that happens in a course goes to its workspace's log.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from reprolab.v1 import common_pb2, events_pb2
from sqlalchemy.orm import Session

from ..core.outbox import ACCOUNTS_LOG, emit

SERVICE_ACTOR = common_pb2.Actor(user_id="lti", username="lti", platform_admin=True)


def actor_of(user) -> common_pb2.Actor:
    return common_pb2.Actor(user_id=user.id, username=user.username, platform_admin=user.platform_admin)


def address(request: Request) -> str:
    return (request.client.host if request.client else "")[:64]


def record(db: Session, request: Request | FastAPI | None, *, type: str, subject: str,
           actor: common_pb2.Actor | None = None, workspace: str = ACCOUNTS_LOG, commit: bool = True,
           **fields: object) -> None:
    """Add an ``lti.<type>`` event (empty fields left out); commits and wakes the outbox unless told not to."""
    payload = events_pb2.LtiEvent(**{k: v for k, v in fields.items() if v not in (None, "", 0)})
    if isinstance(request, Request) and not payload.address:
        payload.address = address(request)
    emit(db, type=f"lti.{type}", actor=actor or SERVICE_ACTOR, subject=subject, workspace=workspace, lti=payload)
    if commit:
        db.commit()
        wake(request)


def wake(owner: Request | FastAPI | None) -> None:
    """Tell the outbox there is something to publish (``owner``: the request, or the app outside one)."""
    app = owner.app if isinstance(owner, Request) else owner
    outbox = getattr(app.state, "outbox", None) if app is not None else None
    if outbox is not None:
        outbox.wake()
