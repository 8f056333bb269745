"""The caller: who am I, and my API tokens."""

from fastapi import APIRouter, Request, Response

from ... import crud
from ...core.bodylimit import BodyLimitedRoute
from ...schemas import Token, TokenCreate, TokenCreated, TokenList, User
from ..deps import CurrentUser, SessionDep

router = APIRouter(prefix="/me", tags=["me"], route_class=BodyLimitedRoute)


@router.get("", response_model=User)
async def read_me(user: CurrentUser) -> User:
    # async: no I/O here, so no thread-pool hop (it was a sixth of the request's CPU)
    return User.of(user)


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def create_token(body: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenCreated:
    """A new API token for the caller. The token is in this response only."""
    token, row = crud.create_token(session, user=user, name=body.name)
    return TokenCreated(**Token.of(row).model_dump(), token=token)


@router.get("/tokens", response_model=TokenList)
def list_tokens(session: SessionDep, user: CurrentUser) -> TokenList:
    """The caller's tokens (metadata only; tokens themselves are never shown again)."""
    return TokenList(items=[Token.of(t) for t in crud.list_tokens(session, user=user)])


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def revoke_token(token_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke one of the caller's tokens; it stops working at once. Not the token this request is
    authenticated with, nor a password-less platform admin's last one (409: you would be locked out)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    crud.revoke_token(session, user=user, token_id=token_id,
                      current_token=value.strip() if scheme.lower() == "bearer" else "")
    return Response(status_code=204)
